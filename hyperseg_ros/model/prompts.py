"""The one place that knows HyperSeg's prompt templates (release wording, Phi `v0` conversation).

A conversation is a string with placeholders that `multimodal_sequence.py` replaces by
embeddings: `<image>` (SigLIP tokens), `<temporal>` (fine-grained tokens), `<refer>` (the
sentence + [SEG]), `<cls>` (one category name + [SEG] each), `<region>` (one region token
each), `<seg>` (the mask tokens). Everything else is plain text.
"""
from __future__ import annotations

import re

from ..command import TASKS

SYSTEM = ("A chat between a curious user and an artificial intelligence assistant. "
          "The assistant gives helpful, detailed, and polite answers to the user's questions.")
USER = " USER: "
ASSISTANT = " ASSISTANT: "
END = "<|endoftext|>"
SEG = "[SEG]"
BACKGROUND = "background"  # the last category of PSALM's category prompts (softmax_background scoring)

IMAGE, TEMPORAL, REFER, CLS, REGION, MASKS = "<image>", "<temporal>", "<refer>", "<cls>", "<region>", "<seg>"
PLACEHOLDERS = (IMAGE, TEMPORAL, REFER, CLS, REGION, MASKS)

_IMAGE_HEAD = "This is an image <image>\n<temporal>\n, "
_FRAME_HEAD = "This is a frame <image>\n<temporal>\n, "
# Human turns as released (RES, ReasonSeg, ReasonVOS); categories and regions follow PSALM's
# lists with the paper's instruction, since the release ships no prompt for them.
_REFERRING = "Please doing Referring Segmentation according to the following instruction:\n<refer>"
_REASONING = "Please doing Reasoning Segmentation according to the following instruction:\n<refer>"
_REASONING_VIDEO = ("Please doing Reasoning Segmentation according to the following instruction."
                    "\nThis is all the instruction: <refer>\n")
_CATEGORIES = ("Please segment all the positive objects according to the following potential categories."
               "\nThis is all the candidate categories: {items}.\n")
_REGIONS = "Please segment by given regions.\nThis is all regions: {items}.\n"
# The answer is teacher-forced (no generation): [SEG] then the mask tokens.
ANSWER = "\nSure, the segmentation result is [SEG]<seg>"


def human_turn(task: str, num_categories: int = 0, num_regions: int = 0, video: bool = False,
               parallel_categories: bool = False) -> str:
    """The user's turn for `task` (one of command.TASKS) with its placeholders.

    video: a frame of a stream. Only reasoning has a released frame prompt (ReasonVOS); the other
    tasks use the image wording for frames too.
    parallel_categories: the category spans share their positions (config.category_prompts), so no
    separator text sits between them: a separator's position would tell which span came last.
    """
    if task == "referring":
        return _IMAGE_HEAD + _REFERRING
    if task == "reasoning":
        return _FRAME_HEAD + _REASONING_VIDEO if video else _IMAGE_HEAD + _REASONING
    if task == "open_vocabulary":
        return _IMAGE_HEAD + _CATEGORIES.format(items=("" if parallel_categories else ", ").join([CLS] * num_categories))
    if task == "visual_prompt":
        return _IMAGE_HEAD + _REGIONS.format(items=", ".join([REGION] * num_regions))
    raise ValueError(f"no prompt for task {task!r}")


def conversation(task: str, num_categories: int = 0, num_regions: int = 0, video: bool = False,
                 parallel_categories: bool = False) -> str:
    """Whole sequence text: system, USER turn, ASSISTANT answer, end of text."""
    turn = human_turn(task, num_categories, num_regions, video, parallel_categories)
    return SYSTEM + USER + turn + ASSISTANT + ANSWER + END


def _words(text: str) -> set[str]:
    for p in PLACEHOLDERS:
        text = text.replace(p, " ")
    return set(re.findall(r"\w+|[^\w\s]", text.lower()))


# Every word the templates use, so that a small word-level tokenizer can include them.
TEMPLATE_WORDS: frozenset[str] = frozenset().union(*(
    _words(conversation(task, 2, 2, video))
    for task in TASKS for video in (False, True)
)) - {"[", "]", "seg", "<", "|", ">", "endoftext"}
