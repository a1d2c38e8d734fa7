"""The code base passes `make lint` (ruff with the project's ruff.toml), so CI catches lint too."""
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def test_ruff_finds_nothing():
    ruff = Path(sys.executable).with_name("ruff")
    ruff = str(ruff) if ruff.exists() else shutil.which("ruff")
    if ruff is None:
        pytest.fail("ruff is pinned in requirements.txt but not installed: run `make setup`")
    done = subprocess.run([ruff, "check", "hyperseg_ros", "test", "scripts", "launch"], cwd=ROOT,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
