"""The mask-shape encoder (model/mask_shape.py): its windows, its start from a model that lacks it, and
that what it reads carries the world's shapes."""
import cv2
import numpy as np
import pytest
import torch

from hyperseg_ros.model.config import HyperSegConfig
from hyperseg_ros.model.hyperseg import HyperSeg
from hyperseg_ros.model.mask_shape import MaskShapeEncoder, mask_extent, sample_windows, window_grid
from hyperseg_ros.training.dataset import boxes_of
from hyperseg_ros.training.train import FRESH_MODULES, load_pretrained
from hyperseg_ros.world.scene import SHAPES, object_mask, random_object


def disc_logits(h, w, cy, cx, r):
    yy, xx = np.mgrid[:h, :w]
    inside = (yy + 0.5 - cy) ** 2 + (xx + 0.5 - cx) ** 2 <= r * r
    return torch.tensor(np.where(inside, 6.0, -6.0), dtype=torch.float32)


def own_windows(logits: torch.Tensor, size: int) -> torch.Tensor:
    """[Q,h,w] -> each mask's probability in the window of its own box [Q,S,S]."""
    grid = window_grid(logits[None], boxes_of((logits > 0).float())[None], size)[0]
    return sample_windows(logits.sigmoid()[:, None], grid[:, None])[:, 0, 0]


def test_a_window_removes_place_and_scale_but_keeps_the_outline():
    small_left = disc_logits(48, 64, 12, 12, 5)
    large_right = disc_logits(48, 64, 28, 44, 14)
    square = torch.full((48, 64), -6.0)
    square[18:38, 30:50] = 6.0
    w = own_windows(torch.stack([small_left, large_right, square]), 16)
    disc_to_disc, disc_to_square = (w[0] - w[1]).abs().mean(), (w[1] - w[2]).abs().mean()
    assert disc_to_disc < 0.5 * disc_to_square  # one disc, wherever and however large; a square fills its corners
    assert w[2, 8, 8] > 0.99 and w[2, 0, 0] < 0.01  # centred, with a margin around it


def test_a_window_is_centred_on_the_mask_and_as_wide_as_the_box():
    """Centre: the mask's confident part (a faint blob elsewhere barely moves it); side: the box's longer
    side where it covers the mask (the box head's place is not used: it has learnt sizes, not places)."""
    logits = torch.full((1, 1, 16, 16), -6.0)
    logits[0, 0, 2:6, 2:6] = 6.0  # the object, centre (0.25, 0.25), 0.25 wide
    logits[0, 0, 12:16, 12:16] = -0.5  # a faint blob far away
    grid = window_grid(logits, torch.tensor([[[0.5, 0.5, 0.3, 0.1]]]), 2)[0, 0]  # [S,S,(x,y)]
    half = 0.3 * 1.2 / 2  # half of the two cells' span, in [-1, 1] units
    assert torch.allclose(grid[0, 0], torch.tensor([-0.5 - half, -0.5 - half]), atol=0.05)  # < half a mask cell
    assert torch.allclose(grid[1, 1], torch.tensor([-0.5 + half, -0.5 + half]), atol=0.05)


def test_a_box_smaller_than_its_mask_widens_to_the_mask():
    """The box head undershoots objects larger than it was trained on: the window still holds the whole
    outline, with its margin, and a faint blob elsewhere does not widen it."""
    logits = torch.full((1, 2, 32, 32), -6.0)
    logits[0, :, 8:24, 8:24] = 6.0  # a square half the input wide
    logits[0, 1, 28:32, 0:4] = -0.5  # the second query's mask has a faint blob too
    weight = logits.sigmoid().pow(4)
    assert mask_extent(weight, weight.sum((-2, -1)))[0].tolist() == pytest.approx([0.5, 0.5], abs=0.01)
    grid = window_grid(logits, torch.tensor([[[0.5, 0.5, 0.3, 0.3]] * 2]), 20)
    inside = sample_windows(logits.sigmoid().flatten(0, 1)[:, None], grid.flatten(0, 1)[:, None])[:, 0, 0]
    for window in inside:
        assert window[0].max() < 0.01 and window[-1].max() < 0.01 and window[:, 0].max() < 0.01
        assert window[10, 10] > 0.99
        assert window.mean() == pytest.approx(1 / 1.2 ** 2, abs=0.05)  # the square fills 1/MARGIN of each side


def test_pixels_are_read_where_the_mask_is():
    """The masks are stride 4 of the pyramid input: the window of a box shows that object's pixels."""
    logits = torch.full((1, 2, 16, 16), -6.0)
    logits[0, 0, 2:6, 2:6] = 6.0  # top left object
    logits[0, 1, 10:14, 8:12] = 6.0  # another, lower right
    pixels = torch.zeros(1, 3, 64, 64)
    pixels[0, 0, 8:24, 8:24] = 1.0  # red under the first mask
    pixels[0, 2, 40:56, 32:48] = 1.0  # blue under the second
    windows = sample_windows(pixels, window_grid(logits, boxes_of((logits[0] > 0).float())[None], 8))[0]  # [Q,3,S,S]
    assert windows[0, :, 4, 4].tolist() == pytest.approx([1.0, 0.0, 0.0], abs=1e-4)
    assert windows[1, :, 4, 4].tolist() == pytest.approx([0.0, 0.0, 1.0], abs=1e-4)


def test_a_model_gaining_the_encoder_names_almost_as_before_until_trained():
    torch.manual_seed(0)
    before = HyperSeg(HyperSegConfig.from_size("tiny")).eval()  # the release: none
    after = HyperSeg(HyperSegConfig.from_size("tiny", mask_shape_size=8)).eval()
    fresh = load_pretrained(after, before.state_dict())
    assert fresh and all(name.startswith(FRESH_MODULES) for name in fresh)
    features = before.encode_pyramid(torch.randn(1, 3, 64, 64))
    queries = torch.randn(1, 4, 16)
    classes = torch.randn(1, 3, 16)
    a = before.predictor(features, queries, class_embeddings=classes)
    b = after.predictor(features, queries, class_embeddings=classes, pixels=torch.randn(1, 3, 64, 64))
    assert torch.equal(a.class_logits, b.class_logits)  # no category words given: the module reads nothing
    names = torch.randn(1, 3, 16)
    c = after.predictor(features, queries, class_embeddings=classes, pixels=torch.randn(1, 3, 64, 64),
                        name_embeddings=names)
    assert torch.allclose(a.class_logits, c.class_logits, atol=0.05)  # it starts near zero
    with pytest.raises(ValueError, match="pixels"):
        after.predictor(features, queries, class_embeddings=classes)
    state = before.state_dict()
    state.pop("predictor.heads.CLASS_proj.0.0.weight")
    with pytest.raises(RuntimeError, match="CLASS_proj"):
        load_pretrained(after, state)


def world_windows(rng: np.random.Generator, count: int, size: int):
    """Masks of single world objects (medium and large, any rotation and drawing variant) as stride-4
    logits of a 256x192 pyramid input, with the object painted white on grey as its pixels."""
    logits, pixels, boxes, labels = [], [], [], []
    for _ in range(count):
        obj = random_object(rng, 1, 192, 256, size=str(rng.choice(["medium", "large"])))
        mask = object_mask(obj, 192, 256).astype(np.float32)
        cells = cv2.resize(mask, (64, 48), interpolation=cv2.INTER_AREA)
        logits.append(torch.tensor(cells * 12 - 6))
        boxes.append(boxes_of(torch.tensor(cells)[None]))
        pixels.append(torch.tensor(mask)[None].expand(3, -1, -1) - 0.5)
        labels.append(SHAPES.index(obj.shape))
    return torch.stack(logits)[:, None], torch.stack(pixels), torch.stack(boxes), torch.tensor(labels)


def test_what_the_encoder_reads_tells_the_world_shapes_apart():
    """Trained alone for a few seconds on one drawing of each object, the encoder names the shapes of
    other drawings (8 shapes: chance 0.125). The model's own features do not (scripts/diagnose_shapes.py)."""
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    encoder = MaskShapeEncoder(32, size=16)
    torch.nn.init.normal_(encoder.proj[-1].weight, std=0.1)  # start from something, not zero
    head = torch.nn.Linear(32, len(SHAPES))
    opt = torch.optim.Adam([*encoder.parameters(), *head.parameters()], lr=3e-3)
    for _ in range(150):
        logits, pixels, boxes, labels = world_windows(rng, 32, 16)
        loss = torch.nn.functional.cross_entropy(head(encoder(logits, pixels, boxes)[:, 0]), labels)
        opt.zero_grad()
        loss.backward()
        opt.step()
    logits, pixels, boxes, labels = world_windows(np.random.default_rng(1), 200, 16)
    with torch.no_grad():
        accuracy = (head(encoder(logits, pixels, boxes)[:, 0]).argmax(-1) == labels).float().mean().item()
    assert accuracy >= 0.7, accuracy


def test_training_starts_a_module_the_start_model_lacks_from_its_constructor(tiny, tmp_path):
    """A model directory saved before the mask-shape encoder existed: training from it keeps every stored
    weight and starts the encoder as its constructor does (transformers would hand it uninitialised memory)."""
    from hyperseg_ros.training.train import export, initialise_from

    old, tokenizer = tiny
    export(old, tokenizer, tmp_path / "old")
    config = HyperSegConfig.from_dict({**old.config.to_dict(), "mask_shape_size": 8})
    (tmp_path / "old" / "config.json").write_text(config.to_json_string())  # as if written after the module came
    torch.manual_seed(0)
    model = HyperSeg(config)
    built = {k: v.clone() for k, v in model.state_dict().items()}
    _, fresh = initialise_from(model, tmp_path / "old")
    assert fresh and all(k.startswith(FRESH_MODULES) for k in fresh)
    state = model.state_dict()
    for name, value in old.state_dict().items():
        assert torch.equal(state[name], value), name
    for name in fresh:
        assert torch.equal(state[name], built[name]), name
    assert set(state) == set(old.state_dict()) | fresh


def test_a_category_name_is_its_own_words_only(tiny):
    """The name side of the shape-name score pools a category's words, not its [SEG] (which every
    category shares) and not another category's words, in any list order."""
    from hyperseg_ros.command import Command
    from hyperseg_ros.model.multimodal_sequence import build_token_batch

    _, tokenizer = tiny
    torch.manual_seed(0)
    model = HyperSeg(HyperSegConfig.from_size("tiny", mask_shape_size=8, vocab_size=len(tokenizer))).eval()
    words = model.llm.get_input_embeddings()
    for categories in (("star", "green square"), ("green square", "star")):
        tokens = build_token_batch(tokenizer, model.config, [Command(task="open_vocabulary", categories=categories)])
        names = model.entity_recognition.name_embeddings(words(tokens.input_ids), tokens)[0]
        for name, got in zip(categories, names):
            ids = torch.tensor(tokenizer(name, add_special_tokens=False).input_ids)
            want = model.entity_recognition.class_word_projector(words(ids).mean(0))
            assert torch.allclose(got, want, atol=1e-6), name
    refer = build_token_batch(tokenizer, model.config, [Command(task="referring", text="the red circle")])
    assert model.entity_recognition.name_embeddings(words(refer.input_ids), refer) is None
