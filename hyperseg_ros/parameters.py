"""The perception node's parameters and what they build: model, session and StreamProcessor.

One set-up for the live node (`perception_node.py`, at `configure`) and for `hyperseg_bag process`
(offline), so that a bag is processed exactly as the node would serve it.
"""
from __future__ import annotations

import math
import os
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from hyperseg_ros.command import TEXT_COMMAND_TASKS, CommandLimits
from hyperseg_ros.stream import StreamParams, StreamProcessor

if TYPE_CHECKING:
    import torch

    from hyperseg_ros.model.session import SegmentationSession

CORES = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


@dataclass(frozen=True)
class Param:
    """One parameter: its default (None: not set unless given), what it does, and the values it
    may take: `type` (bool, int, float, str, list of str), inclusive bounds, choices or a pattern."""

    default: object
    description: str
    type: type
    low: float | None = None
    high: float | None = None
    choices: tuple[str, ...] = ()
    pattern: str = ""


# The one parameter table: config/perception.yaml and the README document the same set, and `check`
# refuses any value outside it, naming the parameter. Upper bounds keep each value's cost bounded.
PARAMETERS: dict[str, Param] = {
    "autostart": Param(True, "configure and activate at start-up (false: wait for lifecycle transitions)", bool),
    "model_path": Param("", "model directory (config.json + model.safetensors + tokenizer); empty = embedded default",
                        str),
    "device": Param("auto", "auto | cpu | cuda | cuda:N (auto = cuda when available)", str,
                    pattern=r"auto|cpu|cuda(:[0-9]{1,3})?"),
    "dtype": Param("float32", "float32 | float16 | bfloat16 | auto (auto = bfloat16 on cuda, float32 on cpu); "
                   "float16 is unsafe with HyperSeg-3B (Phi-2 attention overflows it)", str,
                   choices=("float32", "float16", "bfloat16", "auto")),
    "categories": Param(None, "default open-vocabulary task answered until a command arrives; unset = the model's "
                              "default vocabulary (config.json default_categories), [''] = none", list),
    "text_task": Param("referring", "task of plain-text commands on `command`: " + " | ".join(TEXT_COMMAND_TASKS),
                       str, choices=TEXT_COMMAND_TASKS),
    "score_threshold": Param(None, "instances scoring below this are not published, in [0, 1]; unset = the model's "
                                   "own threshold per task (config.json score_thresholds, else 0.5)", float, 0.0, 1.0),
    "max_instances": Param(20, "at most this many instances per frame", int, 1, 1000),
    "global_prompt_aggregation": Param(False, "temporal adapter: pool the prompt over past frames (paper eq. 3)", bool),
    "llm_every_n_frames": Param(4, "run the language side (SigLIP, FVP, Phi) every N frames; 1 = every frame",
                                int, 1, 10_000),
    "llm_rerun_score_threshold": Param(0.5, "re-run the language side on a frame whose target score drops below this",
                                       float, 0.0, 1.0),
    "max_frame_age_ms": Param(500.0, "frames that waited longer than this for inference are dropped (0 = never)",
                              float, 0.0, 3_600_000.0),
    "image_reliability": Param("best_effort", "QoS reliability of the image subscription: best_effort | reliable",
                               str, choices=("best_effort", "reliable")),
    "compressed_input": Param(False, "subscribe to image/compressed (jpeg, png) instead of image", bool),
    "publish_overlay": Param(True, "publish segmentation/overlay (rendered only while someone subscribes)", bool),
    "temporal_reset_gap_s": Param(1.0, "a forward stamp jump larger than this clears temporal state and track ids",
                                  float, 0.0, 86_400.0),
    # more threads than cores only adds contention; torch's pools keep their threads for the process
    "num_threads": Param(0, f"torch CPU threads, at most the cores (here {CORES}); 0 = torch default", int, 0, CORES),
    "diagnostics_period_s": Param(1.0, "period of /diagnostics messages", float, 0.05, 3600.0),
    # what one command may ask for (command.CommandLimits); over a limit it is rejected, naming it
    "max_text_chars": Param(300, "longest referring / reasoning text of a command", int, 1, 10_000),
    "max_categories": Param(32, "most open-vocabulary categories in a command", int, 1, 256),
    "max_category_chars": Param(40, "longest category name", int, 1, 1000),
    "max_prompts": Param(16, "most boxes + points in a visual prompt", int, 1, 256),
    "max_command_id_chars": Param(64, "longest command id (echoed in every result)", int, 1, 1024),
    "image_silence_warn_s": Param(5.0, "warn when an image publisher is matched but no image came for this long (s)",
                                  float, 0.1, 86_400.0),
    "cameras": Param(None, "camera names served by one model, each a topic prefix (front: front/image, "
                           "front/segmentation, ...); unset or [''] = one camera on image, segmentation, ...", list),
}
START_UP_PARAMETERS = ("autostart", "diagnostics_period_s")  # read once, when the node is created


def defaults() -> dict:
    """{name: default} of every parameter."""
    return {name: param.default for name, param in PARAMETERS.items()}


def unknown_names(names) -> list[str]:
    """The names among `names` that are no parameter of the node (a misspelt key is otherwise ignored)."""
    return sorted(set(names) - set(PARAMETERS))


def dropped_overrides(argv: list[str], values: dict) -> list[tuple[str, str]]:
    """(name, text) of each `-p name:=text` among the ROS arguments of `argv` that the node's
    parameter `values` do not show: rcl drops an override whose type differs from the params
    file's without a word."""
    import yaml

    dropped, ros_args = [], False
    for flag, arg in zip(argv, argv[1:]):
        ros_args = (ros_args or flag == "--ros-args") and flag != "--"
        if not (ros_args and flag in ("-p", "--param") and ":=" in arg):
            continue
        name, text = arg.split(":=", 1)
        name = name.rsplit(":", 1)[-1]  # node_name:param
        try:
            value = yaml.safe_load(text)
        except yaml.YAMLError:
            value = text
        if name in values and (type(value) is not type(values[name]) or value != values[name]):
            dropped.append((name, text))
    return dropped


def check_value(name: str, value):
    """`value` as the parameter `name` takes it (an integer for a float parameter becomes a float);
    ValueError naming the parameter when its type, range or choice is wrong."""
    param = PARAMETERS[name]
    if value is None and param.default is None:
        return None
    kind = param.type.__name__ if param.type is not list else "list of strings"
    if param.type is float and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
    ok = (all(isinstance(v, str) for v in value) if param.type is list and isinstance(value, (list, tuple))
          else isinstance(value, param.type) and not (param.type is int and isinstance(value, bool)))
    if not ok:
        raise ValueError(f"parameter {name} must be a {kind}, not {type(value).__name__} {_shown(value)}")
    if param.type is float and not math.isfinite(value):
        raise ValueError(f"parameter {name} must be a finite number, not {value}")
    if param.low is not None and not param.low <= value <= param.high:
        raise ValueError(f"parameter {name} must lie in [{param.low:g}, {param.high:g}], not {value}")
    if param.choices and value not in param.choices:
        raise ValueError(f"parameter {name} must be one of {', '.join(param.choices)}, not {_shown(value)}")
    if param.pattern and not re.fullmatch(param.pattern, value):
        raise ValueError(f"parameter {name} must be {param.description.split(' (')[0]}, not {_shown(value)}")
    return list(value) if param.type is list else value


def check(params: dict) -> dict:
    """The parameters checked one by one (`check_value`) and together (the `categories` within the
    command limits, the device present); ValueError naming the first that cannot be served."""
    checked = {name: check_value(name, params[name]) for name in PARAMETERS if name in params}
    limits = CommandLimits.from_params(checked)
    names = [c.strip() for c in checked.get("categories") or () if c.strip()]
    if len(names) > limits.max_categories:
        raise ValueError(f"parameter categories has {len(names)} names (max_categories {limits.max_categories})")
    if any(len(c) > limits.max_category_chars for c in names):
        raise ValueError(f"parameter categories has a name of {max(map(len, names))} characters "
                         f"(max_category_chars {limits.max_category_chars})")
    camera_names(checked.get("cameras"))
    if "device" in checked:
        resolve_device(checked["device"], checked.get("dtype", "float32"))
    return checked


# a relative topic name of one or more tokens (ROS: a token does not start with a digit)
CAMERA_NAME = r"[A-Za-z][A-Za-z0-9_]*(/[A-Za-z][A-Za-z0-9_]*)*"
MAX_CAMERAS = 16


def camera_names(param: list[str] | None) -> tuple[str, ...]:
    """The cameras the node serves: the `cameras` parameter's names (blank ones dropped), or ("",)
    (one camera on the node's own topics) when none is named; ValueError naming the parameter."""
    names = tuple(c.strip() for c in param or () if c.strip())
    bad = [c for c in names if not re.fullmatch(CAMERA_NAME, c)]
    if bad:
        raise ValueError(f"parameter cameras must hold relative topic names (letters, digits, _ and /), not {_shown(bad[0])}")
    if len(set(names)) != len(names):
        raise ValueError(f"parameter cameras names a camera twice: {_shown(list(names))}")
    if len(names) > MAX_CAMERAS:
        raise ValueError(f"parameter cameras has {len(names)} names (at most {MAX_CAMERAS})")
    return names or ("",)


def _shown(value) -> str:
    """`value` for an error line: repr (control characters escaped), cut."""
    text = repr(value)
    return text if len(text) <= 60 else text[:60] + "..."


def resolve_device(device: str, dtype: str) -> tuple[str, torch.dtype]:
    """(torch device string, torch dtype) for the `device` and `dtype` parameters; ValueError when
    the device is not there (before any model is loaded)."""
    import torch

    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda"):
        index = int(device.partition(":")[2] or 0)
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if index >= count:
            raise ValueError(f"parameter device is {device!r}, but torch sees {count} CUDA device(s)")
    if dtype == "auto":
        dtype = "bfloat16" if device.startswith("cuda") else "float32"  # Phi-2 overflows float16
    dtypes = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}
    if dtype not in dtypes:
        raise ValueError(f"dtype must be one of {', '.join(dtypes)} or auto, not {dtype!r}")
    return device, dtypes[dtype]


_TORCH_THREADS: list[int] = []  # torch's own intra-op thread count, before a parameter changed it


def use_threads(num_threads: int) -> None:
    """torch's intra-op threads: `num_threads`, or torch's own count for 0. The setting is
    process-wide, so cleanup calls use_threads(0): a later configure starts from torch's own count."""
    import torch

    if not _TORCH_THREADS:
        _TORCH_THREADS.append(torch.get_num_threads())
    torch.set_num_threads(num_threads or _TORCH_THREADS[0])


@dataclass
class Pipeline:
    """What the parameters built: the stream processor over a loaded model, and what to report."""

    processor: StreamProcessor
    model_name: str  # the model_path, or "embedded:hyperseg-world"
    device: str
    dtype: torch.dtype
    categories: tuple[str, ...]  # the default task's vocabulary, () = wait for a command
    load_seconds: float
    params: dict = field(default_factory=dict)  # the checked parameters it was built from

    def new_processor(self) -> StreamProcessor:
        """A StreamProcessor for another stream (camera): a session of its own (temporal state,
        tracker ids, command) over the same loaded model, set up as the first one."""
        session = self.processor.session
        return StreamProcessor(build_session(self.params, session.model, session.tokenizer), self.processor.params)


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


def build_pipeline(params: dict, session: SegmentationSession | None = None,
                   announce: Callable[[str], None] | None = None) -> Pipeline:
    """Check `params`, load the model they name, wrap it in a session and a StreamProcessor.
    session: an already built SegmentationSession to use instead (the model is not loaded).
    announce: called with one line once the parameters are checked, before the model is read."""

    from hyperseg_ros.model import DEFAULT_MODEL_NAME, load_model

    params = {**params, **check(params)}
    use_threads(params["num_threads"])
    device, dtype = resolve_device(str(params["device"]), str(params["dtype"]))
    started = time.monotonic()
    model_name = str(params["model_path"]) or f"embedded:{DEFAULT_MODEL_NAME}"
    if session is None:
        if announce is not None:
            announce(f"loading model {model_name} on {device} ({dtype})")
        session = build_session(params, *load_model(str(params["model_path"]), device=device, dtype=dtype))
    categories = categories_from(params["categories"], getattr(session.model.config, "default_categories", None))
    processor = StreamProcessor(session, StreamParams(temporal_reset_gap_s=float(params["temporal_reset_gap_s"]),
                                                      max_frame_age_ms=float(params["max_frame_age_ms"]),
                                                      categories=categories,
                                                      limits=CommandLimits.from_params(params)))
    return Pipeline(processor, model_name, device, dtype, categories, time.monotonic() - started, params)


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
