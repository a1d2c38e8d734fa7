"""What the operator asked for, independent of ROS: one `Command` per request.

The node builds a `Command` from a `std_msgs/String` or a `SegmentationCommand`; bags and tests
build them directly. Validation lives here so every entry point rejects the same things.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

# Task families, named here only: a sentence names its target (TEXT_TASKS), a category list
# (CATEGORY_TASKS), or boxes/points on the image (REGION_TASKS).
TEXT_TASKS = ("referring", "reasoning")
CATEGORY_TASKS = ("open_vocabulary",)
REGION_TASKS = ("visual_prompt",)
TASKS = (*TEXT_TASKS, *CATEGORY_TASKS, *REGION_TASKS)
TEXT_COMMAND_TASKS = (*TEXT_TASKS, *CATEGORY_TASKS)  # what a plain-text command (std_msgs/String) can ask
MAX_TEXT_CHARS = 1000
MAX_CATEGORIES = 64
MAX_CATEGORY_CHARS = 100
MAX_PROMPTS = 16


class CommandError(ValueError):
    """A command that cannot be served; the message says why."""


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


def validate_command(cmd: Command, image_size: tuple[int, int] | None = None) -> Command:
    """Return `cmd` with its task normalised, or raise CommandError.

    image_size: (height, width) of the frames the prompts refer to; when given, boxes and
    points must lie inside the image.
    """
    task = (cmd.task or "referring").strip().lower()
    if task not in TASKS:
        raise CommandError(f"unknown task {cmd.task!r}; expected one of {', '.join(TASKS)}")
    if task in TEXT_TASKS:
        if not cmd.text.strip():
            raise CommandError(f"{task} command has empty text")
        if len(cmd.text) > MAX_TEXT_CHARS:
            raise CommandError(f"{task} text has {len(cmd.text)} characters (max {MAX_TEXT_CHARS})")
    elif task in CATEGORY_TASKS:
        cats = tuple(c.strip() for c in cmd.categories)
        if not cats or any(not c for c in cats):
            raise CommandError("open_vocabulary command needs non-empty category names")
        if len(cats) > MAX_CATEGORIES:
            raise CommandError(f"{len(cats)} categories (max {MAX_CATEGORIES})")
        if any(len(c) > MAX_CATEGORY_CHARS for c in cats):
            raise CommandError(f"a category name is longer than {MAX_CATEGORY_CHARS} characters")
        cmd = _replace(cmd, categories=cats)
    else:  # visual_prompt
        if not cmd.boxes and not cmd.points:
            raise CommandError("visual_prompt command has no boxes and no points")
        if len(cmd.boxes) + len(cmd.points) > MAX_PROMPTS:
            raise CommandError(f"{len(cmd.boxes) + len(cmd.points)} visual prompts (max {MAX_PROMPTS})")
        for x, y, w, h in cmd.boxes:
            if not all(math.isfinite(v) for v in (x, y, w, h)) or w <= 0 or h <= 0:
                raise CommandError(f"box {(x, y, w, h)} is empty or not finite")
            if image_size is not None and (x < 0 or y < 0 or x + w > image_size[1] or y + h > image_size[0]):
                raise CommandError(f"box {(x, y, w, h)} lies outside the {image_size[1]}x{image_size[0]} image")
        for x, y in cmd.points:
            if not (math.isfinite(x) and math.isfinite(y)):
                raise CommandError(f"point {(x, y)} is not finite")
            if image_size is not None and not (0 <= x < image_size[1] and 0 <= y < image_size[0]):
                raise CommandError(f"point {(x, y)} lies outside the {image_size[1]}x{image_size[0]} image")
    return _replace(cmd, task=task)


def _replace(cmd: Command, **changes) -> Command:
    from dataclasses import replace

    return replace(cmd, **changes)
