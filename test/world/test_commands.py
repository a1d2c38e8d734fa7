"""Commands: unambiguous targets, correct no-match, open-vocabulary ground truth, prompts on target."""
import re

import numpy as np
import pytest

from hyperseg_ros.command import validate_command
from hyperseg_ros.world.commands import (
    COLOUR_KNOWLEDGE,
    CORNER_WORDS,
    POSITION_PHRASES,
    SHAPE_KNOWLEDGE,
    UNKNOWN,
    Description,
    describe,
    reasoning,
    referring,
    resolve,
    sample_command,
)
from hyperseg_ros.world.scene import COLOURS, SHAPES, SceneObject, draw_scene
from hyperseg_ros.world.splits import SPLITS, sample_rng, split_of, split_seed
from hyperseg_ros.world.vocabulary import world_words

SIZE_WORDS = ("small", "medium", "large")


def _plain_match(phrase: str, objects):
    """Independent reading of a plain phrase ("the small red circle"): objects whose attributes match."""
    words = phrase.lower().split()
    colour = next((w for w in words if w in COLOURS), None)
    shape = next((w for w in words if w in SHAPES), None)
    size = next((w for w in words if w in SIZE_WORDS), None)
    return [o for o in objects if (colour in (None, o.colour)) and (shape in (None, o.shape)) and (size in (None, o.size))]


def test_referring_targets_are_unique_and_visible():
    plain_checked = 0
    for seed in range(150):
        rng = np.random.default_rng(seed)
        scene = draw_scene(rng, 320, 240)
        wc = referring(rng, scene)
        if wc is None:
            continue
        validate_command(wc.command)
        assert len(wc.targets) == 1
        i = [o.identity for o in scene.objects].index(wc.targets[0])
        assert scene.masks[i].any()
        phrase_words = set(wc.phrase.split())
        target = scene.objects[i]
        head = re.split(r" (?:to the left of|to the right of|left of|right of|above|below|under|next to|beside|inside|in) ",
                        wc.phrase)[0]  # the words before a relation describe the target itself
        for w in head.split():
            assert w not in COLOURS or w == target.colour, wc.phrase
            assert w not in SHAPES or w == target.shape, wc.phrase
        if not phrase_words & {"left", "right", "top", "bottom", "centre", "center", "middle", "above", "below", "under",
                               "next", "beside", "inside", "in"} and not any(w.endswith(("most", "est")) for w in phrase_words):
            assert _plain_match(wc.phrase, scene.objects) == [target], wc.phrase
            plain_checked += 1
    assert plain_checked > 30


def test_resolver_refuses_borderline_and_ambiguous_descriptions():
    a = SceneObject(1, "circle", "red", "small", 100.0, 100.0, 20.0, 0.0)
    b = SceneObject(2, "circle", "red", "small", 200.0, 100.0, 20.0, 0.0)
    c = SceneObject(3, "square", "blue", "large", 150.0, 100.0, 60.0, 0.0)
    objs = [a, b, c]
    assert resolve(Description(colour="red", shape="circle"), objs, 320, 240) == [0, 1]
    assert resolve(Description(colour="red", shape="circle", relation=("left of", Description("blue", "square"))),
                   objs, 320, 240) == [0]
    assert resolve(Description(colour="red", superlative="leftmost"), objs, 320, 240) == [0]
    # a centre exactly on a third's border is neither clearly left nor clearly not
    edge = SceneObject(4, "star", "green", "small", 320 / 3, 100.0, 20.0, 0.0)
    assert resolve(Description(shape="star", position="left"), [edge], 320, 240) is None
    assert describe(np.random.default_rng(0), objs, 2, 320, 240) is not None


def test_reasoning_property_picks_exactly_the_target():
    clues = {**{k: set(v) for k, v in CORNER_WORDS.items()}, **{k: {v} for k, v in SHAPE_KNOWLEDGE.items()}}
    checked = 0
    for seed in range(150):
        rng = np.random.default_rng(seed)
        scene = draw_scene(rng, 320, 240)
        wc = reasoning(rng, scene)
        if wc is None:
            continue
        target = next(o for o in scene.objects if o.identity == wc.targets[0])
        for clue, shapes in clues.items():
            if wc.phrase.endswith(clue):
                assert target.shape in shapes
                named_colour = next((w for w in wc.phrase.split() if w in COLOURS), None)
                holders = [o for o in scene.objects if o.shape in shapes and named_colour in (None, o.colour)]
                assert holders == [target], wc.phrase
                checked += 1
        for thing, colour in COLOUR_KNOWLEDGE.items():
            if wc.phrase.endswith(" " + thing):
                assert target.colour == colour
                named_shape = next((w for w in wc.phrase.split() if w in SHAPES), None)
                assert [o for o in scene.objects if o.colour == colour and named_shape in (None, o.shape)] == [target]
                checked += 1
    assert checked > 50


_THIRDS = {"left": (0, None), "right": (2, None), "top": (None, 0), "bottom": (None, 2), "centre": (1, 1),
           "top left": (0, 0), "top right": (2, 0), "bottom left": (0, 2), "bottom right": (2, 2)}


def _in_third(o, word, width, height) -> bool:
    """Independent reading of a position word: the object's centre lies in that third (no margins)."""
    col, row = _THIRDS[word]
    return ((col is None or int(3 * o.cx / width) == col) and (row is None or int(3 * o.cy / height) == row))


def test_no_match_commands_describe_nothing_in_the_scene():
    forms = set()
    for seed in range(120):
        rng = np.random.default_rng(seed)
        scene = draw_scene(rng, 320, 240)
        wc = referring(rng, scene, no_match=True)
        assert wc.targets == () and wc.kind == "no_match"
        forms.add(wc.form)
        head = re.split(r" (?:to the left of|to the right of|left of|right of|above|below|under|next to|beside|inside|in) ",
                        wc.phrase)[0]
        if wc.form in ("attributes", "superlative"):  # only an absent kind has no largest / leftmost
            assert _plain_match(head, scene.objects) == [], wc.phrase
        elif wc.form == "position":
            word = next(w for w, said in POSITION_PHRASES.items() if any(wc.phrase.endswith(" " + p) for p in said))
            assert not any(_in_third(o, word, 320, 240) for o in _plain_match(head, scene.objects)), wc.phrase
        wr = reasoning(rng, scene, no_match=True)
        if wr is not None:
            assert wr.targets == ()
    assert forms == {"attributes", "position", "superlative", "relation"}


@pytest.mark.parametrize("task", ["referring", "reasoning"])
def test_no_target_share_is_the_same_for_every_phrase_form(task):
    """The form of a phrase (position, superlative, relation, kind of reasoning) must not tell
    whether the command has a target: each form's no-target share within 10 points of the overall."""
    targets, forms = [], []
    for i in range(400):
        rng = sample_rng("train", i)
        scene = draw_scene(rng, 320, 240)
        wc = sample_command(rng, scene, task, no_match_rate=0.2)
        targets.append(not wc.targets)
        forms.append(wc.form)
    overall = np.mean(targets)
    assert 0.12 < overall < 0.3
    for form in set(forms):
        share = np.mean([t for t, f in zip(targets, forms) if f == form])
        assert abs(share - overall) <= 0.10, (form, share, overall)


def test_open_vocabulary_ground_truth():
    absent_seen = 0
    for seed in range(80):
        rng = np.random.default_rng(seed)
        scene = draw_scene(rng, 320, 240)
        wc = sample_command(rng, scene, "open_vocabulary")
        cats = [c.lower() for c in wc.command.categories]
        assert 1 <= len(cats) <= 8 and len(wc.category_targets) == len(cats)
        validate_command(wc.command)
        seen = set()
        for cat, ids in zip(cats, wc.category_targets):
            words = cat.split()
            expect = {o.identity for o in scene.objects if all(w in (o.colour, o.shape) for w in words)}
            assert set(ids) == expect, cat
            assert not seen & expect, "categories of one command must not overlap"
            seen |= expect
            absent_seen += not ids
    assert absent_seen > 20


@pytest.mark.parametrize("kind", ["box", "point"])
def test_visual_prompts_lie_on_the_target(kind):
    for seed in range(40):
        rng = np.random.default_rng(seed)
        scene = draw_scene(rng, 320, 240)
        wc = sample_command(rng, scene, f"visual_prompt_{kind}")
        validate_command(wc.command, (scene.height, scene.width))
        i = [o.identity for o in scene.objects].index(wc.targets[0])
        mask = scene.masks[i]
        if kind == "point":
            x, y = wc.command.points[0]
            assert mask[int(y), int(x)]
        else:
            x, y, w, h = wc.command.boxes[0]
            inside = mask[int(y):int(np.ceil(y + h)), int(x):int(np.ceil(x + w))].sum()
            assert inside >= 0.8 * mask.sum()


def test_operator_phrasing_keeps_the_words_in_vocabulary():
    vocab = set(world_words())
    unknown_seen = 0
    for seed in range(300):
        rng = np.random.default_rng(seed)
        scene = draw_scene(rng, 160, 120)
        task = ("referring", "reasoning", "open_vocabulary")[seed % 3]
        wc = sample_command(rng, scene, task, no_match_rate=0.2)
        text = wc.command.text or " ".join(wc.command.categories)
        words = re.findall(r"[a-z]+", text.lower())
        assert set(words) <= vocab | set(UNKNOWN), set(words) - vocab
        unknown_seen += bool(set(words) & set(UNKNOWN))
        assert set(re.findall(r"[a-z]+", wc.phrase)) <= set(words) | {"the"}
    assert unknown_seen > 10


def test_splits_are_disjoint_and_bounded():
    ranges = sorted(SPLITS.values())
    assert all(a[1] <= b[0] for a, b in zip(ranges, ranges[1:]))
    assert split_of(split_seed("val", 5)) == "val" and split_of(split_seed("test", 0)) == "test"
    with pytest.raises(IndexError):
        split_seed("val", SPLITS["val"][1] - SPLITS["val"][0])
    a = draw_scene(sample_rng("train", 0), 160, 120)
    b = draw_scene(sample_rng("test", 0), 160, 120)
    assert not np.array_equal(a.image, b.image)
