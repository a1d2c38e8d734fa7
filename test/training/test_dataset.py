"""Training batches: reproducible by step, targets on the stride-4 grid match the scene."""
import numpy as np
import torch

from hyperseg_ros.model.config import HyperSegConfig
from hyperseg_ros.model.tokenizer import build_word_tokenizer
from hyperseg_ros.training.dataset import clip_batches, image_batch, instances
from hyperseg_ros.world.commands import sample_command
from hyperseg_ros.world.scene import draw_scene
from hyperseg_ros.world.vocabulary import world_words

TOKENIZER = build_word_tokenizer(world_words())
CONFIG = HyperSegConfig.from_size("tiny", vocab_size=len(TOKENIZER))


def test_same_step_same_batch():
    a = image_batch(3, 2, "referring", TOKENIZER, CONFIG)
    b = image_batch(3, 2, "referring", TOKENIZER, CONFIG)
    c = image_batch(4, 2, "referring", TOKENIZER, CONFIG)
    assert torch.equal(a.pyramid, b.pyramid) and torch.equal(a.tokens.input_ids, b.tokens.input_ids)
    assert not torch.equal(a.pyramid, c.pyramid)


def test_targets_match_the_scene():
    grid = CONFIG.pyramid_image_size // 4
    for task in ("referring", "open_vocabulary", "visual_prompt"):
        batch = image_batch(0, 3, task, TOKENIZER, CONFIG)
        assert batch.tokens.task == task and batch.pyramid.shape[0] == 3
        for t in batch.targets:
            assert t.masks.shape[1:] == (grid, grid) and len(t.labels) == len(t.masks) == len(t.boxes)
            assert ((t.masks >= 0) & (t.masks <= 1)).all()
            assert (t.labels < batch.tokens.num_prompts).all()
        if task == "visual_prompt":
            assert all(len(p) == 1 and len(p[0]) > 0 for p in batch.region_points)


def test_instances_follow_the_command():
    rng = np.random.default_rng(5)
    scene = draw_scene(rng, 320, 240)
    wc = sample_command(rng, scene, "open_vocabulary")
    masks, labels, ids = instances(scene, wc)
    expect = [(c, i) for c, group in enumerate(wc.category_targets) for i in group]
    assert list(zip(labels, ids)) == expect
    index = {o.identity: k for k, o in enumerate(scene.objects)}
    for m, i in zip(masks, ids):
        assert np.array_equal(m, scene.masks[index[i]])


def test_clip_batches_share_the_command_and_identities():
    frames = clip_batches(1, 2, "open_vocabulary", TOKENIZER, CONFIG)
    assert len(frames) == 3
    assert all(torch.equal(f.tokens.input_ids, frames[0].tokens.input_ids) for f in frames)
    ids0 = [set(t.identities.tolist()) for t in frames[0].targets]
    ids2 = [set(t.identities.tolist()) for t in frames[2].targets]
    assert any(a & b for a, b in zip(ids0, ids2))  # the same objects, frames apart
