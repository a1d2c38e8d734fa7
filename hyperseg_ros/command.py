"""What the operator asked for, independent of ROS: one `Command` per request.

The node builds a `Command` from a `std_msgs/String` or a `SegmentationCommand`; bags and tests
build them directly. Validation lives here so every entry point rejects the same things.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, fields

# Task families, named here only: a sentence names its target (TEXT_TASKS), a category list
# (CATEGORY_TASKS), or boxes/points on the image (REGION_TASKS).
TEXT_TASKS = ("referring", "reasoning")
CATEGORY_TASKS = ("open_vocabulary",)
REGION_TASKS = ("visual_prompt",)
TASKS = (*TEXT_TASKS, *CATEGORY_TASKS, *REGION_TASKS)
TEXT_COMMAND_TASKS = (*TEXT_TASKS, *CATEGORY_TASKS)  # what a plain-text command (std_msgs/String) can ask

# CommandError.reason values (diagnostics count `command_rejected_<reason>`)
REJECT_UNKNOWN_TASK = "unknown_task"
REJECT_EMPTY = "empty"
REJECT_TOO_LONG = "too_long"  # text, a category name or the id over its limit
REJECT_TOO_MANY = "too_many"  # categories or visual prompts over their limit
REJECT_BAD_PROMPT = "bad_prompt"  # an empty or non-finite box or point
REJECT_OUTSIDE_IMAGE = "outside_image"  # a box or point outside the frame it applies to


@dataclass(frozen=True)
class CommandLimits:
    """What one command may ask for. Each limit bounds the cost of every frame answered under the
    command (the prompt is part of every forward pass) or of every result and log line (the id).
    The node's parameters of the same names set them."""

    max_text_chars: int = 300
    max_categories: int = 32
    max_category_chars: int = 40
    max_prompts: int = 16  # boxes + points
    max_command_id_chars: int = 64

    @classmethod
    def from_params(cls, params: dict) -> CommandLimits:
        """The limits among a node parameter dict (same names); absent ones keep their default."""
        return cls(**{f.name: int(params[f.name]) for f in fields(cls) if f.name in params})


class CommandError(ValueError):
    """A command that cannot be served; the message says why, `reason` is a short diagnostics key."""

    def __init__(self, message: str, reason: str = REJECT_EMPTY):
        super().__init__(message)
        self.reason = reason


@dataclass(frozen=True)
class Command:
    task: str = "referring"
    text: str = ""
    categories: tuple[str, ...] = ()
    boxes: tuple[tuple[float, float, float, float], ...] = ()  # x, y, w, h in image pixels
    points: tuple[tuple[float, float], ...] = ()  # x, y in image pixels
    id: str = ""
    stamp_ns: int | None = None  # when the command was given (header stamp), if known

    @property
    def label(self) -> str:
        """The phrase a result is labelled with when the task has no category vocabulary."""
        return self.text.strip()


def validate_command(cmd: Command, image_size: tuple[int, int] | None = None,
                     limits: CommandLimits | None = None) -> Command:
    """Return `cmd` with its task normalised, or raise CommandError.

    image_size: (height, width) of the frame the prompts apply to; when given, boxes and points
    must lie inside it. limits: when given, over a limit is an error naming the limit.
    """
    task = (cmd.task or "referring").strip().lower()
    if task not in TASKS:
        raise CommandError(f"unknown task {_short(cmd.task)!r}; expected one of {', '.join(TASKS)}",
                           REJECT_UNKNOWN_TASK)
    if limits is not None and len(cmd.id) > limits.max_command_id_chars:
        raise CommandError(f"command id has {len(cmd.id)} characters (max_command_id_chars {limits.max_command_id_chars})",
                           REJECT_TOO_LONG)
    if task in TEXT_TASKS:
        if not cmd.text.strip():
            raise CommandError(f"{task} command has empty text")
        if limits is not None and len(cmd.text) > limits.max_text_chars:
            raise CommandError(f"{task} text has {len(cmd.text)} characters (max_text_chars "
                               f"{limits.max_text_chars})", REJECT_TOO_LONG)
    elif task in CATEGORY_TASKS:
        cats = tuple(c.strip() for c in cmd.categories)
        if not cats or any(not c for c in cats):
            raise CommandError("open_vocabulary command needs non-empty category names")
        if limits is not None and len(cats) > limits.max_categories:
            raise CommandError(f"{len(cats)} categories (max_categories {limits.max_categories})", REJECT_TOO_MANY)
        if limits is not None and any(len(c) > limits.max_category_chars for c in cats):
            raise CommandError(f"a category name has {max(map(len, cats))} characters (max_category_chars "
                               f"{limits.max_category_chars})", REJECT_TOO_LONG)
        cmd = _replace(cmd, categories=cats)
    else:  # visual_prompt
        if not cmd.boxes and not cmd.points:
            raise CommandError("visual_prompt command has no boxes and no points")
        prompts = len(cmd.boxes) + len(cmd.points)
        if limits is not None and prompts > limits.max_prompts:
            raise CommandError(f"{prompts} visual prompts (max_prompts {limits.max_prompts})", REJECT_TOO_MANY)
        for x, y, w, h in cmd.boxes:
            if not all(math.isfinite(v) for v in (x, y, w, h)) or w <= 0 or h <= 0:
                raise CommandError(f"box {(x, y, w, h)} is empty or not finite", REJECT_BAD_PROMPT)
            if image_size is not None and (x < 0 or y < 0 or x + w > image_size[1] or y + h > image_size[0]):
                raise CommandError(f"box {(x, y, w, h)} lies outside the {image_size[1]}x{image_size[0]} image",
                                   REJECT_OUTSIDE_IMAGE)
        for x, y in cmd.points:
            if not (math.isfinite(x) and math.isfinite(y)):
                raise CommandError(f"point {(x, y)} is not finite", REJECT_BAD_PROMPT)
            if image_size is not None and not (0 <= x < image_size[1] and 0 <= y < image_size[0]):
                raise CommandError(f"point {(x, y)} lies outside the {image_size[1]}x{image_size[0]} image",
                                   REJECT_OUTSIDE_IMAGE)
    return _replace(cmd, task=task)


def _short(text: str, n: int = 40) -> str:
    """`text` cut for a log line (a rejected command may be arbitrarily long)."""
    return text if len(text) <= n else text[:n] + f"... ({len(text)} characters)"


def _replace(cmd: Command, **changes) -> Command:
    from dataclasses import replace

    return replace(cmd, **changes)
