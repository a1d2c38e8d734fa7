"""The Makefile's knobs reach the commands it runs (`make -n`: printed, not run)."""
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.skipif(shutil.which("make") is None, reason="no make on PATH")


def _dry(*args: str) -> str:
    run = subprocess.run(["make", "-n", "-o", "setup", *args], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stderr
    return run.stdout


def test_eval_knobs():
    assert "evaluate --split val --samples 10 --clips 2 --still 10" in _dry("eval", "SPLIT=val", "SAMPLES=10", "CLIPS=2")
    assert "evaluate --split all --samples 200 --clips 32 --still 50" in _dry("eval")


def test_bench_prints_its_table_first():
    assert "scripts/bench.py" in _dry("bench")
