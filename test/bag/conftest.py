"""Fixtures of the bag tests. The committed bags are test/data/bag_* (see test/data/bags.md)."""
from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture
def params_file(tmp_path, model_dir) -> Path:
    """config/perception.yaml with the test model on CPU; score_threshold 0 so that the random test
    model's weak answers still give instances (masks) to compare."""
    import yaml

    root = Path(__file__).resolve().parents[2]
    doc = yaml.safe_load((root / "config" / "perception.yaml").read_text())
    doc["/**"]["ros__parameters"].update(model_path=str(model_dir), device="cpu", dtype="float32",
                                             score_threshold=0.0)
    path = tmp_path / "perception.yaml"
    path.write_text(yaml.safe_dump(doc))
    return path
