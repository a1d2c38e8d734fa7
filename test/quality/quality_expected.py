"""The quality tests' expected failures, tied to the model they were measured on (see conftest.py):
its weights and its config.json (conventions and score thresholds change the answers too)."""
from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

EXPECTED_FAILURES = Path(__file__).with_name("expected_failures.json")


MODEL_FILES = ("config.json", "model.safetensors")


def model_sha256(model_dir: Path) -> str | None:
    """sha256 over a model directory's config.json and model.safetensors (None when one is missing)."""
    paths = [Path(model_dir) / name for name in MODEL_FILES]
    if not all(p.is_file() for p in paths):
        return None
    digest = hashlib.sha256()
    for path in paths:
        with path.open("rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()


def expected_failures(sha256: str | None, record: dict | None = None) -> frozenset[str]:
    """The recorded failing cases (node ids within test/quality) when `sha256` is that of the model
    they were measured on, else none."""
    record = json.loads(EXPECTED_FAILURES.read_text()) if record is None else record
    return frozenset(record["fails"]) if sha256 is not None and sha256 == record["sha256"] else frozenset()


def xfail_marks(nodeids, sha256: str | None, record: dict | None = None) -> dict[str, pytest.MarkDecorator]:
    """{node id: strict xfail mark} for the cases among `nodeids` (full pytest node ids) that the model
    `sha256` (model_sha256) is recorded to fail."""
    fails = expected_failures(sha256, record)
    reason = f"the model {str(sha256)[:12]} (weights and config) fails this easy scene (training: MODEL_CARD.md)"
    return {nodeid: pytest.mark.xfail(reason=reason, strict=True) for nodeid in nodeids
            if nodeid.split("test/quality/", 1)[-1] in fails}
