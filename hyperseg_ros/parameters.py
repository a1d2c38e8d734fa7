"""The perception node's parameters and what they build: model, session and StreamProcessor.

One set-up for the live node (`perception_node.py`, at `configure`) and for `hyperseg_bag process`
(offline), so that a bag is processed exactly as the node would serve it.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

from hyperseg_ros.command import TEXT_COMMAND_TASKS, CommandLimits
from hyperseg_ros.stream import StreamParams, StreamProcessor

if TYPE_CHECKING:
    import torch

    from hyperseg_ros.model.session import SegmentationSession

# name -> (default, description). config/perception.yaml and the README document the same set.
# A None default: not set unless given (`categories`: then the model directory's own vocabulary;
# `score_threshold`: the model's own threshold per task).
PARAMETERS: dict[str, tuple[object, str]] = {
    "autostart": (True, "configure and activate at start-up (false: wait for lifecycle transitions)"),
    "model_path": ("", "model directory (config.json + model.safetensors + tokenizer); empty = embedded default"),
    "device": ("auto", "auto | cpu | cuda | cuda:N (auto = cuda when available)"),
    "dtype": ("float32", "float32 | float16 | bfloat16 | auto (auto = bfloat16 on cuda, float32 on cpu); "
              "float16 is unsafe with HyperSeg-3B (Phi-2 attention overflows it)"),
    "categories": (None, "default open-vocabulary task answered until a command arrives; unset = the model's "
                         "default vocabulary (config.json default_categories), [''] = none"),
    "text_task": ("referring", "task of plain-text commands on `command`: " + " | ".join(TEXT_COMMAND_TASKS)),
    "score_threshold": (None, "instances scoring below this are not published, in [0, 1]; unset = the model's "
                              "own threshold per task (config.json score_thresholds, else 0.5)"),
    "max_instances": (20, "at most this many instances per frame"),
    "global_prompt_aggregation": (False, "temporal adapter: pool the prompt over past frames (paper eq. 3)"),
    "llm_every_n_frames": (4, "run the language side (SigLIP, FVP, Phi) every N frames; 1 = every frame"),
    "llm_rerun_score_threshold": (0.5, "re-run the language side on a frame whose target score drops below this"),
    "max_frame_age_ms": (500.0, "frames that waited longer than this for inference are dropped (0 = never)"),
    "image_reliability": ("best_effort", "QoS reliability of the image subscription: best_effort | reliable"),
    "compressed_input": (False, "subscribe to image/compressed (jpeg, png) instead of image"),
    "publish_overlay": (True, "publish segmentation/overlay (rendered only while someone subscribes)"),
    "temporal_reset_gap_s": (1.0, "a forward stamp jump larger than this clears temporal state and track ids"),
    "num_threads": (0, "torch CPU threads (0 = torch default)"),
    "diagnostics_period_s": (1.0, "period of /diagnostics messages"),
    # what one command may ask for (command.CommandLimits); over a limit it is rejected, naming it
    "max_text_chars": (300, "longest referring / reasoning text of a command"),
    "max_categories": (32, "most open-vocabulary categories in a command"),
    "max_category_chars": (40, "longest category name"),
    "max_prompts": (16, "most boxes + points in a visual prompt"),
    "max_command_id_chars": (64, "longest command id (echoed in every result)"),
    "image_silence_warn_s": (5.0, "warn when an image publisher is matched but no image came for this long (s)"),
}
UNSET_TYPES = {"categories": "string_array", "score_threshold": "double"}  # how an unset default is declared


def defaults() -> dict:
    """{name: default} of every parameter."""
    return {name: default for name, (default, _) in PARAMETERS.items()}


def check(params: dict) -> None:
    """Raise ValueError naming the first parameter whose value cannot be served."""
    if params["text_task"] not in TEXT_COMMAND_TASKS:
        raise ValueError(f"text_task must be one of {', '.join(TEXT_COMMAND_TASKS)}, not {params['text_task']!r}")
    if params["score_threshold"] is not None and not 0.0 <= float(params["score_threshold"]) <= 1.0:
        raise ValueError(f"score_threshold must lie in [0, 1], not {params['score_threshold']}")
    if int(params["max_instances"]) < 1:
        raise ValueError(f"max_instances must be at least 1, not {params['max_instances']}")
    for name in ("max_text_chars", "max_categories", "max_category_chars", "max_prompts", "max_command_id_chars"):
        if name in params and int(params[name]) < 1:
            raise ValueError(f"{name} must be at least 1, not {params[name]}")
    resolve_device(str(params["device"]), str(params["dtype"]))


def resolve_device(device: str, dtype: str) -> tuple[str, torch.dtype]:
    """(torch device string, torch dtype) for the `device` and `dtype` parameters."""
    import torch

    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    if dtype == "auto":
        dtype = "bfloat16" if device.startswith("cuda") else "float32"  # Phi-2 overflows float16
    dtypes = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}
    if dtype not in dtypes:
        raise ValueError(f"dtype must be one of {', '.join(dtypes)} or auto, not {dtype!r}")
    return device, dtypes[dtype]


@dataclass
class Pipeline:
    """What the parameters built: the stream processor over a loaded model, and what to report."""

    processor: StreamProcessor
    model_name: str  # the model_path, or "embedded:hyperseg-world"
    device: str
    dtype: torch.dtype
    categories: tuple[str, ...]  # the default task's vocabulary, () = wait for a command
    load_seconds: float


def categories_from(param: list[str] | None, model_default: list[str] | None) -> tuple[str, ...]:
    """The default task's vocabulary: the `categories` parameter when set (blank names dropped,
    so [''] = none), else the model directory's `default_categories`."""
    names = model_default if param is None else param
    return tuple(c.strip() for c in names or () if c.strip())


def build_session(params: dict, model, tokenizer) -> SegmentationSession:
    """A SegmentationSession over a loaded model, set up by the parameters as the node sets it up."""
    from hyperseg_ros.model.session import SegmentationSession

    threshold = params["score_threshold"]
    return SegmentationSession(model, tokenizer, score_threshold=None if threshold is None else float(threshold),
                               max_instances=int(params["max_instances"]),
                               global_prompt_aggregation=bool(params["global_prompt_aggregation"]),
                               llm_every_n_frames=int(params["llm_every_n_frames"]),
                               llm_rerun_score_threshold=float(params["llm_rerun_score_threshold"]))


def build_pipeline(params: dict, session: SegmentationSession | None = None) -> Pipeline:
    """Check `params`, load the model they name, wrap it in a session and a StreamProcessor.
    session: an already built SegmentationSession to use instead (the model is not loaded)."""
    import torch

    from hyperseg_ros.model import DEFAULT_MODEL_NAME, load_model

    check(params)
    if int(params["num_threads"]) > 0:
        torch.set_num_threads(int(params["num_threads"]))
    device, dtype = resolve_device(str(params["device"]), str(params["dtype"]))
    started = time.monotonic()
    if session is None:
        session = build_session(params, *load_model(str(params["model_path"]), device=device, dtype=dtype))
    categories = categories_from(params["categories"], getattr(session.model.config, "default_categories", None))
    processor = StreamProcessor(session, StreamParams(temporal_reset_gap_s=float(params["temporal_reset_gap_s"]),
                                                      max_frame_age_ms=float(params["max_frame_age_ms"]),
                                                      categories=categories,
                                                      limits=CommandLimits.from_params(params)))
    return Pipeline(processor, str(params["model_path"]) or f"embedded:{DEFAULT_MODEL_NAME}", device, dtype,
                    categories, time.monotonic() - started)


def release_memory(device: str) -> None:
    """After the last reference to a model is dropped: collect it, empty torch's CUDA cache, and
    hand freed heap pages back to the OS (glibc keeps them otherwise, so RSS would not drop)."""
    import ctypes
    import gc

    import torch

    gc.collect()
    if device.startswith("cuda"):
        torch.cuda.empty_cache()
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):  # not glibc
        pass
