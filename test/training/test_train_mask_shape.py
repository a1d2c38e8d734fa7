"""Training the mask-shape encoder (training/train_mask_shape.py): what each object is named, which windows
it learns from, and the stage that trains it alone on a shipped model."""
import json

import torch

from hyperseg_ros.model.config import HyperSegConfig
from hyperseg_ros.model.hyperseg import HyperSeg
from hyperseg_ros.model.segmentation_predictor import PredictorOutput
from hyperseg_ros.training.dataset import Batch, Target, boxes_of
from hyperseg_ros.training.train_mask_shape import mask_shape_loss, membership_targets, world_names
from hyperseg_ros.world.scene import COLOURS, SHAPES


def test_each_object_is_its_shape_its_colour_and_both():
    names = world_names()
    member = membership_targets(torch.tensor([SHAPES.index("star"), SHAPES.index("circle")]),
                                torch.tensor([list(COLOURS).index("red"), list(COLOURS).index("blue")]))
    assert member.shape == (2, len(names)) == (2, 80)
    assert [names[k] for k in member[0].nonzero()[:, 0]] == ["star", "red", "red star"]
    assert [names[k] for k in member[1].nonzero()[:, 0]] == ["circle", "blue", "blue circle"]


def _square(top, left, side, size=16):
    m = torch.zeros(size, size)
    m[top:top + side, left:left + side] = 1
    return m


def test_the_loss_reads_every_true_mask_and_only_the_queries_that_found_their_object():
    """Object 0 is found by query 2 (same mask); object 1's matched query 0 segments empty background: its
    window would teach nothing, so it is left out. Both objects' true-mask windows are read."""
    torch.manual_seed(0)
    model = HyperSeg(HyperSegConfig.from_size("tiny", mask_shape_size=8)).train()
    truth = torch.stack([_square(2, 2, 6), _square(9, 8, 5)])
    target = Target(truth, torch.tensor([0, 1]), torch.tensor([1, 2]), boxes_of(truth), torch.tensor([3, 0]),
                    torch.tensor([0, 2]))
    logits = torch.full((1, 4, 16, 16), -8.0)
    logits[0, 2] = truth[0] * 16 - 8
    logits[0, 0, 0:2, 12:16] = 8.0  # elsewhere
    predictions = PredictorOutput(logits, None, None, None, torch.full((1, 4, 4), 0.3), None)
    batch = Batch(torch.randn(1, 3, 64, 64), torch.randn(1, 3, 32, 32), None, None, [target])
    names = torch.randn(80, 16, requires_grad=True)
    loss, seen = mask_shape_loss(model, batch, predictions, [(torch.tensor([2, 0]), torch.tensor([0, 1]))], names)
    assert (seen["windows"], seen["found"]) == (2 * 2 + 1, 1)
    assert seen["member"][4].nonzero()[:, 0].tolist() == seen["member"][0].nonzero()[:, 0].tolist()  # object 0 twice
    loss.backward()
    assert names.grad.abs().sum() > 0 and model.predictor.mask_shape.cnn[0].weight.grad.abs().sum() > 0
    no_colours = Target(truth, torch.tensor([0, 1]), torch.tensor([1, 2]), boxes_of(truth), torch.tensor([3, 0]))
    nothing, seen = mask_shape_loss(model, Batch(batch.pyramid, batch.vision, None, None, [no_colours]), predictions,
                                    [(torch.tensor([2, 0]), torch.tensor([0, 1]))], names)
    assert nothing == 0 and seen["windows"] == 0


def test_the_stage_trains_only_the_new_parts_of_a_shipped_model(tmp_path):
    """Two steps from the shipped weights: a model directory that loads, whose every weight but the encoder's
    and the word projector's is the shipped one, and whose encoder has moved."""
    from hyperseg_ros.model import default_model_dir, load_model
    from hyperseg_ros.training.train_mask_shape import main

    summary = main(["--init-from", str(default_model_dir()), "--out", str(tmp_path / "m"), "--steps", "2",
                    "--scenes", "2", "--threads", "1"])
    assert summary["steps"] == 2
    shipped, _ = load_model("")
    trained, _ = load_model(str(tmp_path / "m"))
    assert trained.config.mask_shape_size == 24
    state = trained.state_dict()
    new_parts = ("predictor.mask_shape.", "entity_recognition.class_word_projector.")
    for name, value in shipped.state_dict().items():
        if not name.startswith(new_parts):
            assert torch.equal(state[name], value), name
    assert not torch.equal(state["predictor.mask_shape.cnn.0.weight"],
                           shipped.state_dict().get("predictor.mask_shape.cnn.0.weight", torch.zeros(0)))
    assert json.loads((tmp_path / "m" / "mask_shape_training.json").read_text())["steps"] == 2
