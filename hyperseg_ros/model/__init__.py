"""HyperSeg for robots, ROS-free: `load_model` and the streaming `SegmentationSession`.

A model directory holds `config.json` + `model.safetensors` + the tokenizer files
(`model.save_pretrained(d); tokenizer.save_pretrained(d)`), loaded back by `load_model(d)`.
"""
from __future__ import annotations

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
    Only local safetensors and JSON files are read; nothing is downloaded. Raises
    loading.ModelFileError (a ValueError naming the file) for a directory that cannot be served."""
    from .loading import check_directory, load_checked, read_config_json

    directory = Path(path) if path else default_model_dir()
    check_directory(directory)  # regular files only, shards inside the directory: nothing can block a read
    if read_config_json(directory).get("model_type") == RELEASED_MODEL_TYPE:
        from .checkpoint import load_released

        model, tokenizer = load_released(str(directory), dtype)
    else:  # config.json, weights and tokenizer checked before anything is built (loading.py)
        model, tokenizer = load_checked(directory, dtype)
    return model.to(device=device, dtype=dtype).eval(), tokenizer
