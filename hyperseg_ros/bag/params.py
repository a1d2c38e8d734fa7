"""The node's `ros__parameters` yaml (config/perception.yaml) read without ROS, for offline tools."""
from __future__ import annotations

from pathlib import Path

import yaml


def read_ros_parameters(path: str | Path | None) -> dict:
    """Merge every `ros__parameters` block of a ROS 2 params file (`/**:`, node names), in file order.

    Returns {} for path None. Nested keys (`model: {path: ...}`) become dotted names (`model.path`),
    as ROS declares them.
    """
    if path is None:
        return {}
    doc = yaml.safe_load(Path(path).read_text()) or {}
    merged: dict = {}
    for block in doc.values():
        if isinstance(block, dict) and isinstance(block.get("ros__parameters"), dict):
            merged.update(_flatten(block["ros__parameters"]))
    return merged


def _flatten(tree: dict, prefix: str = "") -> dict:
    out = {}
    for key, value in tree.items():
        if isinstance(value, dict):
            out.update(_flatten(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out
