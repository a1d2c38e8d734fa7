"""The open-vocabulary name scorer (model/name_scorer.py): the evidence it reads, that its labels follow the
names and not their places, and that the predictor hands its logits to the answer."""
import torch
import torch.nn.functional as F

from hyperseg_ros.model.config import HyperSegConfig
from hyperseg_ros.model.hyperseg import HyperSeg
from hyperseg_ros.model.mask_pieces import add_pieces, whole_or_pieces
from hyperseg_ros.model.name_scorer import EVIDENCE, FLOOR, NameScorer, evidence


def _column(name: str) -> int:
    return EVIDENCE.index(name)


def test_the_evidence_of_each_pair():
    """Query 0 fits category 1 best, then 0; category 2 is padding. One mask fills a quarter of the map."""
    membership = torch.tensor([[[1.0, 3.0, 9.0], [-2.0, -4.0, 9.0]]])  # [1, Q=2, N=3]
    class_logits = torch.tensor([[[0.5, -1.0, float("-inf")], [-3.0, 2.0, float("-inf")]]])
    mask_logits = torch.full((1, 2, 8, 8), -5.0)
    mask_logits[0, 0, :4, :4] = 2.0
    real = torch.tensor([[True, True, False]])
    e = evidence(membership, class_logits, mask_logits, real)
    assert e.shape == (1, 2, 3, len(EVIDENCE))
    member = F.logsigmoid(membership)
    assert torch.allclose(e[0, :, :2, _column("membership")], member[0, :, :2])
    assert (e[0, :, 2, _column("membership")] == FLOOR).all()  # padding is no name, whatever its words pooled to
    # the best name's margin is over the second; every other name's is under the best
    assert torch.isclose(e[0, 0, 1, _column("margin")], member[0, 0, 1] - member[0, 0, 0])
    assert torch.isclose(e[0, 0, 0, _column("margin")], member[0, 0, 0] - member[0, 0, 1])
    assert torch.isclose(e[0, 1, 0, _column("best other")], member[0, 1, 1])
    assert torch.allclose(e[0, :, :, _column("class head")], torch.tensor([[0.5], [2.0]]).expand(2, 3))
    assert torch.isclose(e[0, 0, 0, _column("mask area")], torch.tensor(0.25).log())
    assert torch.isclose(e[0, 0, 0, _column("mask confidence")], torch.logit(torch.sigmoid(torch.tensor(2.0))), atol=1e-4)
    assert torch.isclose(e[0, 0, 0, _column("list length")], torch.tensor(2.0).log())
    assert (e[..., _column("piece share")] == 1).all()  # whole masks
    pieces = evidence(membership, class_logits, mask_logits, real, torch.tensor([[0.25, 1.0]]))
    assert torch.equal(pieces[0, :, :, _column("piece share")], torch.tensor([[0.25], [1.0]]).expand(2, 3))
    alone = evidence(membership[:, :, :1], class_logits[:, :, :1], mask_logits, None)
    assert (alone[0, :, 0, _column("best other")] == FLOOR).all()  # a one-name list has no other name


def test_a_permuted_list_permutes_the_name_logits():
    """The category's own evidence is its words' fit; the class head enters only as the query's best logit, so a
    reordered list reorders the scores and no query changes its label (the class head's logits may follow the
    place in the list, as the embedded model's do)."""
    torch.manual_seed(0)
    scorer = NameScorer(16)
    membership, class_logits = torch.randn(1, 5, 4) * 3, torch.randn(1, 5, 4)
    mask_logits = torch.randn(1, 5, 8, 8) * 4
    order = torch.tensor([2, 0, 3, 1])
    with torch.no_grad():
        logits = scorer(evidence(membership, class_logits, mask_logits, None))
        permuted = scorer(evidence(membership[..., order], class_logits[..., order], mask_logits, None))
    assert torch.allclose(permuted, logits[..., order], atol=1e-5)
    assert torch.equal(order[permuted.argmax(-1)], logits.argmax(-1))


def test_the_predictor_hands_the_scorer_logits_to_the_answer():
    """With a name scorer, the last round carries its logits (padded categories -inf) beside the class head's."""
    torch.manual_seed(0)
    model = HyperSeg(HyperSegConfig.from_size("tiny", mask_shape_size=8, name_scorer_hidden=8)).eval()
    pixels = torch.randn(1, 3, 64, 64)
    features = model.encode_pyramid(pixels)
    queries, classes, names = torch.randn(1, 4, 16), torch.randn(1, 3, 16), torch.randn(1, 3, 16)
    real = torch.tensor([[True, True, False]])
    predictor = model.predictor
    with torch.no_grad():
        bare = predictor(features, queries, class_embeddings=classes, class_mask=real, pixels=pixels)
        out = predictor(features, queries, class_embeddings=classes, class_mask=real, pixels=pixels,
                        name_embeddings=names)
        candidates = add_pieces(bare.mask_logits, bare.class_logits, bare.boxes, bare.reid_embeddings)
        membership = predictor.mask_shape.membership(predictor.mask_shape(out.mask_logits, pixels, out.boxes), names)
        want = predictor.name_scorer(evidence(membership, out.class_logits, out.mask_logits, real, candidates[4]))
        want = whole_or_pieces(want.masked_fill(~real[:, None, :], float("-inf")), candidates[5], candidates[0],
                               queries.shape[1])
    assert bare.name_logits is None and all(r.name_logits is None for r in out.aux)
    for got, expected in zip((out.mask_logits, out.class_logits, out.boxes, out.reid_embeddings), candidates):
        assert torch.equal(got, expected)  # the class head's own logits, untouched; the pieces after the queries
    assert torch.equal(torch.isinf(out.name_logits), torch.isinf(want))
    finite = torch.isfinite(want)
    assert torch.allclose(out.name_logits[finite], want[finite], atol=1e-5)
    assert torch.isinf(out.name_logits[..., 2]).all() and finite[..., :2].any()
    no_scorer = HyperSeg(HyperSegConfig.from_size("tiny", mask_shape_size=8)).eval()
    assert no_scorer.predictor.name_scorer is None
