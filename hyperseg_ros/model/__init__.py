"""HyperSeg for robots, ROS-free: `load_model` and the streaming `SegmentationSession`.

A model directory holds `config.json` + `model.safetensors` + the tokenizer files
(`model.save_pretrained(d); tokenizer.save_pretrained(d)`), loaded back by `load_model(d)`.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

import torch

DEFAULT_MODEL_NAME = "hyperseg-world"
RELEASED_MODEL_TYPE = "mipha_phi"  # config.json of the released HyperSeg-3B


def default_model_dir() -> Path:
    """The embedded default model: `<repo>/models/hyperseg-world` when running from a checkout, else
    `share/hyperseg_ros/models/hyperseg-world` of the install prefix (this venv's, or any ament one)."""
    candidates = [Path(__file__).resolve().parents[2] / "models" / DEFAULT_MODEL_NAME,
                  Path(sys.prefix) / "share" / "hyperseg_ros" / "models" / DEFAULT_MODEL_NAME]
    try:
        from ament_index_python.packages import get_package_share_directory

        candidates.append(Path(get_package_share_directory("hyperseg_ros")) / "models" / DEFAULT_MODEL_NAME)
    except (ImportError, LookupError, OSError, ValueError):  # no ROS install, no AMENT_PREFIX_PATH
        pass
    for directory in candidates:
        if (directory / "config.json").is_file():
            return directory
    raise FileNotFoundError(
        "the embedded default model is missing: no config.json in "
        + ", ".join(str(d) for d in candidates) + ". Run `make setup`, train it (make train) or pass a model_path.")


def load_model(path: str = "", device: str | torch.device = "cpu", dtype: torch.dtype = torch.float32):
    """-> (HyperSeg in eval mode on `device`/`dtype`, tokenizer). `path == ""`: the embedded default
    model. A released HyperSeg-3B directory (model_type mipha_phi) is mapped by checkpoint.py.
    Only local files are read; nothing is downloaded."""
    from .hyperseg import HyperSeg
    from .tokenizer import load_tokenizer

    directory = Path(path) if path else default_model_dir()
    config_file = directory / "config.json"
    if not config_file.is_file():
        raise FileNotFoundError(f"no HyperSeg model at {directory} (config.json missing)")
    if json.loads(config_file.read_text()).get("model_type") == RELEASED_MODEL_TYPE:
        from .checkpoint import load_released

        model, tokenizer = load_released(str(directory), dtype)
    else:
        model = HyperSeg.from_pretrained(str(directory), dtype=dtype, local_files_only=True)
        tokenizer = load_tokenizer(str(directory))
    return model.to(device=device, dtype=dtype).eval(), tokenizer
