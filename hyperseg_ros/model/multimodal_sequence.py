"""The LLM input sequence: token ids with slots for visual, fine-grained, region and mask tokens.

Order (release): system text, " USER: This is an image", visual tokens, fine-grained tokens,
task text, prompt span (sentence + [SEG] / one "name [SEG]" per category / one region token per
visual prompt), " ASSISTANT: ... is", [SEG], mask tokens, <|endoftext|>.

`build_token_batch` turns commands into a `TokenBatch` (token ids plus a `kind` per position and a
`prompt_index` that says which prompt a position belongs to); `splice_embeddings` fills the slots.

With `config.category_prompts == "parallel"` the category spans of an open-vocabulary sequence are
laid out side by side: each starts at the same position id and sees the text before the list but
not the other spans, and what follows the list sees all of them at the positions after the
longest. A category's embedding then depends on its name only, and the rest of the sequence on the
set of names, not their order.
"""
from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, fields

import torch
from transformers import PreTrainedTokenizerBase

from ..command import Command
from . import prompts
from .config import HyperSegConfig
from .tokenizer import seg_token_id

# What sits at each position of the sequence.
TEXT, VISUAL, FINE_GRAINED, MASK, REGION = 0, 1, 2, 3, 4

_SPLIT = re.compile("(" + "|".join(re.escape(p) for p in prompts.PLACEHOLDERS) + ")")


@dataclass
class TokenBatch:
    """B sequences of one task, right-padded to length T.

    input_ids: [B, T] int64 token ids (pad id at non-text slots and padding).
    attention_mask: [B, T] int64, 1 = real position.
    kind: [B, T] int64, TEXT / VISUAL / FINE_GRAINED / MASK / REGION.
    prompt_index: [B, T] int64, the prompt a position is pooled into for E_P (0 for the referring
        span, the category index, the region index), -1 elsewhere.
    prompt_mask: [B, N] bool, which of the N prompts exist (N = 1, categories or regions).
    task: the command task shared by the batch.
    position_ids: [B, T] int64 position ids (None = 0..T-1, the plain causal layout).
    span: [B, T] int64, the parallel category span of a position (-1 elsewhere); positions of two
        different spans do not see each other (None = plain causal attention).
    """

    input_ids: torch.Tensor
    attention_mask: torch.Tensor
    kind: torch.Tensor
    prompt_index: torch.Tensor
    prompt_mask: torch.Tensor
    task: str
    position_ids: torch.Tensor | None = None
    span: torch.Tensor | None = None

    def to(self, device: torch.device | str) -> TokenBatch:
        return TokenBatch(**{f.name: (v.to(device) if isinstance(v := getattr(self, f.name), torch.Tensor) else v)
                             for f in fields(self)})

    @property
    def num_prompts(self) -> int:
        return self.prompt_mask.shape[1]


def _sample_tokens(tokenizer: PreTrainedTokenizerBase, config: HyperSegConfig, command: Command,
                   video: bool) -> tuple[list[int], list[int], list[int], int]:
    """One sequence as (ids, kind, prompt_index) lists plus its number of prompts."""
    seg_id = seg_token_id(tokenizer)
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    task = command.task
    num_regions = len(command.boxes) + len(command.points)
    names = list(command.categories)
    if task == "open_vocabulary" and config.open_vocabulary_scoring == "softmax_background":
        names.append(prompts.BACKGROUND)
    text = prompts.conversation(task, len(names), num_regions, video, parallel_categories=_parallel(config, task))
    categories = iter(names)
    ids: list[int] = []
    kind: list[int] = []
    prompt: list[int] = []

    def add(new_ids: list[int], what: int, index: int) -> None:
        ids.extend(new_ids)
        kind.extend([what] * len(new_ids))
        prompt.extend([index] * len(new_ids))

    def text_ids(chunk: str) -> list[int]:
        return tokenizer(chunk, add_special_tokens=False)["input_ids"] if chunk else []

    class_index = region_index = 0
    for chunk in _SPLIT.split(text):
        if chunk == prompts.IMAGE:
            add([pad_id] * config.vision_grid ** 2, VISUAL, -1)
        elif chunk == prompts.TEMPORAL:
            add([pad_id] * config.num_fine_grained_tokens, FINE_GRAINED, -1)
        elif chunk == prompts.MASKS:
            add([pad_id] * config.num_mask_tokens, MASK, -1)
        elif chunk == prompts.REFER:  # the sentence and its [SEG] are pooled together
            sentence = (command.text + "." if task == "referring" and config.refer_period else command.text).strip()
            add(text_ids(sentence) + [seg_id], TEXT, 0)
        elif chunk == prompts.CLS:  # one "name [SEG]" span per category
            add(text_ids(next(categories)) + [seg_id], TEXT, class_index)
            class_index += 1
        elif chunk == prompts.REGION:
            add([pad_id], REGION, region_index)
            region_index += 1
        else:
            add(text_ids(chunk), TEXT, -1)
    num_prompts = {"open_vocabulary": class_index, "visual_prompt": region_index}.get(task, 1)
    return ids, kind, prompt, num_prompts


def _parallel(config: HyperSegConfig, task: str) -> bool:
    return task == "open_vocabulary" and config.category_prompts == "parallel"


def _parallel_positions(kind: list[int], prompt: list[int]) -> tuple[list[int], list[int]]:
    """Position ids and span ids of one parallel-category sequence: every span starts where the
    first one does; the positions after the list continue from the end of the longest span."""
    span = [p if k == TEXT else -1 for k, p in zip(kind, prompt)]
    inside = [t for t, s in enumerate(span) if s >= 0]  # contiguous: no separator between parallel spans
    if not inside:
        return list(range(len(span))), span
    base, end = inside[0], inside[-1] + 1
    start: dict[int, int] = {}
    for t in inside:
        start.setdefault(span[t], t)
    longest = max(sum(s == k for s in span) for k in start)
    positions = [t if t < base else base + t - start[span[t]] if t < end else base + longest + t - end
                 for t in range(len(span))]
    return positions, span


def build_token_batch(tokenizer: PreTrainedTokenizerBase, config: HyperSegConfig,
                      commands: Sequence[Command], video: bool = False) -> TokenBatch:
    """Commands (validated, all of one task) -> a right-padded TokenBatch.

    video: frames of a stream (changes only the reasoning prompt, see prompts.human_turn).
    """
    tasks = {c.task for c in commands}
    if len(tasks) != 1:
        raise ValueError(f"a batch holds one task, got {sorted(tasks)}")
    samples = [_sample_tokens(tokenizer, config, c, video) for c in commands]
    length = max(len(s[0]) for s in samples)
    num_prompts = max(1, max(s[3] for s in samples))
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    batch = len(samples)
    input_ids = torch.full((batch, length), pad_id, dtype=torch.long)
    attention_mask = torch.zeros((batch, length), dtype=torch.long)
    kind = torch.full((batch, length), TEXT, dtype=torch.long)
    prompt_index = torch.full((batch, length), -1, dtype=torch.long)
    prompt_mask = torch.zeros((batch, num_prompts), dtype=torch.bool)
    task = tasks.pop()
    parallel = _parallel(config, task)
    position_ids = torch.arange(length).repeat(batch, 1) if parallel else None
    span = torch.full((batch, length), -1, dtype=torch.long) if parallel else None
    for b, (ids, k, p, n) in enumerate(samples):
        t = len(ids)
        input_ids[b, :t] = torch.tensor(ids)
        attention_mask[b, :t] = 1
        kind[b, :t] = torch.tensor(k)
        prompt_index[b, :t] = torch.tensor(p)
        prompt_mask[b, :n] = True
        if parallel:
            positions, spans = _parallel_positions(k, p)
            position_ids[b, :t] = torch.tensor(positions)
            position_ids[b, t:] = positions[-1] + 1 + torch.arange(length - t)
            span[b, :t] = torch.tensor(spans)
    return TokenBatch(input_ids, attention_mask, kind, prompt_index, prompt_mask, task, position_ids, span)


def splice_embeddings(tokens: TokenBatch, text_embeddings: torch.Tensor, visual: torch.Tensor,
                      fine_grained: torch.Tensor, mask_tokens: torch.Tensor,
                      region_tokens: torch.Tensor | None = None) -> torch.Tensor:
    """Fill the slots of the embedded token ids (differentiable in every input).

    text_embeddings: [B, T, D] = embed_tokens(input_ids); visual: [B, V, D]; fine_grained:
    [B, L, D]; mask_tokens: [Q, D] (`seg_query`); region_tokens: [B, K, D] in prompt order
    (needed when the batch has region slots) -> inputs_embeds [B, T, D].
    """
    batch, _, width = text_embeddings.shape
    out = text_embeddings
    slots = [(VISUAL, visual), (FINE_GRAINED, fine_grained),
             (MASK, mask_tokens.unsqueeze(0).expand(batch, -1, -1))]
    if (tokens.kind == REGION).any():
        if region_tokens is None:
            raise ValueError("the sequence has region slots but no region tokens were given")
        # keep the region tokens that exist, in (sample, region) order = slot order
        slots.append((REGION, region_tokens[tokens.prompt_mask]))
    for what, values in slots:
        where = (tokens.kind == what).unsqueeze(-1)
        out = out.masked_scatter(where, values.to(out.dtype).reshape(-1, width))
    return out
