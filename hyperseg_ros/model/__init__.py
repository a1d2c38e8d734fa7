"""HyperSeg for robots, ROS-free: `load_model` and the streaming `SegmentationSession`.

A model directory holds `config.json` + `model.safetensors` + the tokenizer files
(`model.save_pretrained(d); tokenizer.save_pretrained(d)`), loaded back by `load_model(d)`.
"""
from __future__ import annotations

import json
from pathlib import Path

import torch

DEFAULT_MODEL_NAME = "hyperseg-world"
RELEASED_MODEL_TYPE = "mipha_phi"  # config.json of the released HyperSeg-3B


def default_model_dir() -> Path:
    """The embedded default model: `models/hyperseg-world` of the checkout, or of the installed
    `share/hyperseg_ros/` (see hyperseg_ros.resources)."""
    from hyperseg_ros import resources

    try:
        return resources.find("models", DEFAULT_MODEL_NAME, "config.json").parent
    except FileNotFoundError as err:
        raise FileNotFoundError(f"the embedded default model is missing ({err}). "
                                "Run `make setup`, train it (make train) or pass a model_path.") from None


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
