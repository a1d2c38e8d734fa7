"""Parallel category prompts: a category's embedding depends on its name, never on its place.

The tiny model has random weights, so these hold by construction of the sequence layout, not by
training; the sequential (release) layout shows the dependence they remove.
"""
import pytest
import torch

from hyperseg_ros.command import Command
from hyperseg_ros.model.multimodal_sequence import TEXT, build_token_batch

NAMES = ("red circle", "square", "blue", "star")
ORDER = [2, 0, 3, 1]  # NAMES[ORDER] is the permuted list


def _run(model, tokenizer, names, batch_extra=()):
    torch.manual_seed(1)
    size, small = model.config.pyramid_image_size, model.config.vision_image_size
    commands = [Command(task="open_vocabulary", categories=tuple(names))] + list(batch_extra)
    tokens = build_token_batch(tokenizer, model.config, commands)
    pyramid = torch.randn(1, 3, size, size).repeat(len(commands), 1, 1, 1)
    vision = torch.randn(1, 3, small, small).repeat(len(commands), 1, 1, 1)
    with torch.no_grad():
        return tokens, model(pyramid, vision, tokens)


def test_permuting_the_list_permutes_every_category_output(tiny):
    model, tokenizer = tiny
    assert model.config.category_prompts == "parallel"
    _, a = _run(model, tokenizer, NAMES)
    _, b = _run(model, tokenizer, [NAMES[k] for k in ORDER])
    assert torch.allclose(a.prompt_embeddings[0, ORDER], b.prompt_embeddings[0], atol=1e-5)
    assert torch.allclose(a.predictions.class_logits[0][:, ORDER], b.predictions.class_logits[0], atol=1e-5)
    assert torch.allclose(a.query_embeddings, b.query_embeddings, atol=1e-5)  # what follows sees a set
    # the labels a session would give: each query's best category, by name
    best_a = [NAMES[k] for k in a.predictions.class_logits[0].argmax(1).tolist()]
    best_b = [[NAMES[k] for k in ORDER][k] for k in b.predictions.class_logits[0].argmax(1).tolist()]
    assert best_a == best_b


def test_spans_share_positions_and_do_not_see_each_other(tiny):
    model, tokenizer = tiny
    tokens, _ = _run(model, tokenizer, NAMES)
    span, positions = tokens.span[0], tokens.position_ids[0]
    starts = [int(torch.nonzero(span == k)[0]) for k in range(len(NAMES))]
    assert len({int(positions[s]) for s in starts}) == 1  # every span starts at the same position
    longest = max(int((span == k).sum()) for k in range(len(NAMES)))
    after = int(torch.nonzero(span >= 0)[-1]) + 1
    assert int(positions[after]) == int(positions[starts[0]]) + longest
    assert ((tokens.kind[0] == TEXT) | (span < 0)).all()


def test_a_shorter_list_in_the_same_batch_changes_nothing(tiny):
    model, tokenizer = tiny
    _, alone = _run(model, tokenizer, NAMES)
    _, batched = _run(model, tokenizer, NAMES, [Command(task="open_vocabulary", categories=("ring",))])
    assert torch.allclose(alone.predictions.class_logits[0], batched.predictions.class_logits[0], atol=1e-5)


def test_the_sequential_layout_depends_on_the_place(tiny):
    model, tokenizer = tiny
    model.config.category_prompts = "sequential"
    try:
        tokens, a = _run(model, tokenizer, NAMES)
        _, b = _run(model, tokenizer, [NAMES[k] for k in ORDER])
    finally:
        model.config.category_prompts = "parallel"
    assert tokens.span is None and tokens.position_ids is None
    assert not torch.allclose(a.prompt_embeddings[0, ORDER], b.prompt_embeddings[0], atol=1e-3)


@pytest.mark.parametrize("task", ["referring", "visual_prompt"])
def test_other_tasks_keep_the_plain_layout(tiny, task):
    model, tokenizer = tiny
    command = Command(task=task, text="the red circle") if task == "referring" else \
        Command(task=task, boxes=((1.0, 1.0, 5.0, 5.0),))
    tokens = build_token_batch(tokenizer, model.config, [command])
    assert tokens.span is None and tokens.position_ids is None
