"""Mask pieces (model/mask_pieces.py): a query's mask that falls apart into blobs offers each blob as a candidate."""
import numpy as np
import torch

from hyperseg_ros.model.mask_pieces import MIN_CELLS, OUTSIDE, add_pieces, blobs, whole_or_pieces


def _two_blobs() -> torch.Tensor:
    """[16,16] logits: a 4x4 blob top-left, a 3x5 blob bottom-right, a one-cell speck, -3 elsewhere."""
    logits = torch.full((16, 16), -3.0)
    logits[1:5, 1:5] = 2.0
    logits[10:13, 9:14] = 4.0
    logits[8, 2] = 1.0  # a speck: under MIN_CELLS
    return logits


def _inside(logits: torch.Tensor) -> np.ndarray:
    return (logits > 0).numpy().astype(np.uint8)


def test_blobs_are_the_separate_parts_of_a_mask():
    cells = blobs(_inside(_two_blobs()))
    assert [int(c.sum()) for c in cells] == [16, 15]
    assert cells[0][1:5, 1:5].all() and cells[1][10:13, 9:14].all()
    one = torch.full((16, 16), -3.0)
    one[2:9, 2:9] = 1.0
    one[0, 15] = 1.0  # one blob and a speck: nothing to split
    assert blobs(_inside(one)) == [] and blobs(_inside(torch.full((16, 16), -1.0))) == []
    assert MIN_CELLS > 1


def test_pieces_are_appended_with_their_querys_answer_and_their_own_mask_and_box():
    """Image 0's query 1 falls apart in two; image 1 has nothing to split (its candidates are padding)."""
    mask_logits = torch.full((2, 3, 16, 16), -3.0)
    mask_logits[0, 0, 4:12, 4:12] = 3.0
    mask_logits[0, 1] = _two_blobs()
    mask_logits[1, :, 5:9, 5:9] = 1.0
    class_logits = torch.arange(12.0).reshape(2, 3, 2)
    boxes = torch.full((2, 3, 4), 0.5)
    reid = torch.randn(2, 3, 5)
    masks, classes, new_boxes, embeddings, share, parents = add_pieces(mask_logits, class_logits, boxes, reid)
    assert masks.shape == (2, 5, 16, 16) and classes.shape == (2, 5, 2) and embeddings.shape == (2, 5, 5)
    assert torch.equal(masks[:, :3], mask_logits) and torch.equal(new_boxes[:, :3], boxes)  # queries untouched
    first, second = masks[0, 3] > 0, masks[0, 4] > 0
    assert first[1:5, 1:5].all() and int(first.sum()) == 16  # each piece is its blob alone
    assert second[10:13, 9:14].all() and int(second.sum()) == 15
    assert masks[0, 3, 12, 12] == OUTSIDE  # away from its blob
    assert masks[0, 3, 5, 5] == -3.0  # its ring keeps the query's logits (the upsampled boundary)
    assert torch.equal(classes[0, 3], class_logits[0, 1]) and torch.equal(embeddings[0, 4], reid[0, 1])
    assert torch.allclose(new_boxes[0, 3], torch.tensor([3 / 16, 3 / 16, 4 / 16, 4 / 16]))
    assert torch.allclose(new_boxes[0, 4], torch.tensor([11.5 / 16, 11.5 / 16, 5 / 16, 3 / 16]))
    assert torch.allclose(share[0], torch.tensor([1, 1, 1, 16 / 31, 15 / 31]))
    assert parents.tolist() == [[0, 1, 2, 1, 1], [0, 1, 2, -1, -1]]  # each candidate's query; -1 padding
    assert (masks[1, 3:] <= 0).all() and (share[1, 3:] == 0).all()


def test_a_model_without_pieces_gets_its_tensors_back():
    mask_logits = torch.full((1, 2, 8, 8), -1.0)
    mask_logits[0, 0, 2:6, 2:6] = 1.0
    out = add_pieces(mask_logits, torch.zeros(1, 2, 3), torch.zeros(1, 2, 4), torch.zeros(1, 2, 4))
    assert out[0] is mask_logits and out[4].tolist() == [[1.0, 1.0]] and out[5].tolist() == [[0, 1]]


def _square(x: int, y: int, side: int = 3) -> torch.Tensor:
    logits = torch.full((12, 12), -4.0)
    logits[y:y + side, x:x + side] = 3.0
    return logits


def test_a_query_answers_with_its_whole_mask_or_its_pieces_not_both():
    """Queries 0 and 1 fell apart (pieces 3, 4 of query 0; piece 5 of query 1); candidate 6 is padding.
    Query 0's whole mask scores under its best piece: the whole goes. Query 1's whole scores over its piece:
    the piece goes. Query 2 did not fall apart. Nothing else changes."""
    inf = float("inf")
    logits = torch.tensor([[[1.0, 0.0], [3.0, -1.0], [0.5, 0.2], [2.0, 0.5], [-1.0, -2.0], [0.0, 2.5], [9.0, 9.0]]])
    parents = torch.tensor([[0, 1, 2, 0, 0, 1, -1]])
    masks = torch.stack([_square(0, 0) + 0, _square(6, 0), _square(9, 9), _square(0, 0), _square(0, 6),
                         _square(6, 0), torch.full((12, 12), -10.0)])[None]
    masks[0, 0, 6:9, 0:3] = 3.0  # query 0's whole mask holds both its pieces
    masks[0, 1, 6:10, 6:10] = 3.0  # query 1's too (its piece 5 is under half of it: no repeat of it)
    kept = whole_or_pieces(logits, parents, masks, queries=3)
    assert (kept[0, [0, 5, 6]] == -inf).all()
    assert torch.equal(kept[0, [1, 2, 3, 4]], logits[0, [1, 2, 3, 4]])
    assert torch.equal(whole_or_pieces(logits[:, :3], parents[:, :3], masks[:, :3], queries=3), logits[:, :3])


def test_a_piece_that_repeats_a_better_answer_goes():
    """Piece 2 (of query 0) covers what query 1 already answers, with a lower score: it goes; piece 3 stays."""
    logits = torch.tensor([[[0.0], [2.0], [1.0], [1.5]]])
    parents = torch.tensor([[0, 1, 0, 0]])
    masks = torch.stack([_square(0, 0), _square(0, 0, side=4), _square(0, 0), _square(7, 7)])[None]
    kept = whole_or_pieces(logits, parents, masks, queries=2)
    assert kept[0, 2, 0] == float("-inf")
    assert kept[0, 3, 0] == 1.5 and kept[0, 1, 0] == 2.0
