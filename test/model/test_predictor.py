"""SegmentationPredictor (pixel decoder + masked-attention decoder + heads) at tiny sizes."""
import itertools

import pytest
import torch

from hyperseg_ros.model.segmentation_predictor import PredictorOutput, SegmentationPredictor

CHANNELS = [8, 16, 32, 64]
B, Q, N, K, S = 2, 6, 5, 3, 64


def make_predictor(hidden_dim=32, num_points=2, decoder_layers=3) -> SegmentationPredictor:
    torch.manual_seed(0)
    return SegmentationPredictor(
        CHANNELS, hidden_dim=hidden_dim, num_queries=Q, encoder_layers=2, encoder_ffn_dim=64,
        decoder_layers=decoder_layers, decoder_ffn_dim=64, num_heads=2, num_points=num_points, reid_dim=8,
    ).eval()


def make_inputs(hidden_dim=32, size=S):
    g = torch.Generator().manual_seed(1)
    features = {
        f"res{i + 2}": torch.randn(B, c, size // 4 // 2**i, size // 4 // 2**i, generator=g)
        for i, c in enumerate(CHANNELS)
    }
    return dict(
        features=features,
        query_features=torch.randn(B, Q, hidden_dim, generator=g),
        refer_embedding=torch.randn(B, 1, hidden_dim, generator=g),
        class_embeddings=torch.randn(B, N, hidden_dim, generator=g),
        class_mask=torch.tensor([[True] * N, [True, True, False, False, False]]),
        region_embeddings=torch.randn(B, K, hidden_dim, generator=g),
        region_mask=torch.tensor([[True] * K, [True, False, False]]),
    )


def check_round(out: PredictorOutput, refer: bool, classes: bool, regions: bool, size=S):
    assert out.mask_logits.shape == (B, Q, size // 4, size // 4)
    assert out.boxes.shape == (B, Q, 4)
    assert ((out.boxes >= 0) & (out.boxes <= 1)).all()
    assert (out.refer_logits is not None) == refer
    assert (out.class_logits is not None) == classes
    assert (out.region_logits is not None) == regions
    if refer:
        assert out.refer_logits.shape == (B, Q)
    if classes:
        assert out.class_logits.shape == (B, Q, N)
        assert torch.isinf(out.class_logits[1, :, 2:]).all() and torch.isfinite(out.class_logits[1, :, :2]).all()
        assert torch.isfinite(out.class_logits[0]).all()
    if regions:
        assert out.region_logits.shape == (B, K, Q)
        assert torch.isinf(out.region_logits[1, 1:]).all() and torch.isfinite(out.region_logits[1, 0]).all()


@pytest.mark.parametrize("refer,classes,regions", list(itertools.product([False, True], repeat=3)))
def test_shapes_for_every_task_combination(refer, classes, regions):
    predictor = make_predictor()
    x = make_inputs()
    with torch.no_grad():
        out = predictor(
            x["features"], x["query_features"],
            refer_embedding=x["refer_embedding"] if refer else None,
            class_embeddings=x["class_embeddings"] if classes else None,
            class_mask=x["class_mask"] if classes else None,
            region_embeddings=x["region_embeddings"] if regions else None,
            region_mask=x["region_mask"] if regions else None,
        )
    check_round(out, refer, classes, regions)
    assert out.reid_embeddings.shape == (B, Q, 8)
    # Deep supervision: the initial queries + every layer but the last.
    assert len(out.aux) == 3
    for aux in out.aux:
        check_round(aux, refer, classes, regions)
        assert aux.reid_embeddings is None and aux.aux == []
    assert torch.isfinite(out.mask_logits).all()


def test_hidden_below_32_and_other_sizes():
    """Tiny widths (GroupNorm with fewer groups), 4 sampling points, a non-square input."""
    predictor = make_predictor(hidden_dim=16, num_points=4, decoder_layers=4)
    x = make_inputs(hidden_dim=16)
    x["features"] = {k: v[..., : v.shape[-1] // 2] for k, v in x["features"].items()}
    with torch.no_grad():
        out = predictor(x["features"], x["query_features"], refer_embedding=x["refer_embedding"])
    assert out.mask_logits.shape == (B, Q, S // 4, S // 8)
    assert len(out.aux) == 4


def test_scores_are_plain_dot_products_with_the_prompt():
    """No normalisation or temperature: logits are linear in E_P, one prompt does not affect another."""
    predictor = make_predictor()
    x = make_inputs()
    with torch.no_grad():
        base = predictor(x["features"], x["query_features"], refer_embedding=x["refer_embedding"],
                         class_embeddings=x["class_embeddings"])
        scaled = predictor(x["features"], x["query_features"], refer_embedding=3 * x["refer_embedding"],
                           class_embeddings=torch.cat([x["class_embeddings"][:, :2], -x["class_embeddings"][:, 2:]], 1))
    torch.testing.assert_close(scaled.refer_logits, 3 * base.refer_logits)
    torch.testing.assert_close(scaled.class_logits[..., :2], base.class_logits[..., :2])
    torch.testing.assert_close(scaled.class_logits[..., 2:], -base.class_logits[..., 2:])
    torch.testing.assert_close(scaled.mask_logits, base.mask_logits)  # prompts do not change masks


def test_queries_drive_masks_and_gradients_reach_prompts():
    predictor = make_predictor().train()
    x = make_inputs()
    e_q = x["query_features"].clone().requires_grad_(True)
    e_p = x["refer_embedding"].clone().requires_grad_(True)
    out = predictor(x["features"], e_q, refer_embedding=e_p)
    loss = out.mask_logits.square().mean() + out.refer_logits.sum() + sum(a.mask_logits.mean() for a in out.aux)
    loss.backward()
    assert e_q.grad.abs().sum() > 0 and e_p.grad.abs().sum() > 0
    with torch.no_grad():
        predictor.eval()
        same = predictor(x["features"], x["query_features"])
        other = predictor(x["features"], torch.randn(B, Q, 32, generator=torch.Generator().manual_seed(7)))
    assert (other.mask_logits - same.mask_logits).abs().mean() > 1e-2


def test_batch_items_are_independent():
    predictor = make_predictor()
    x = make_inputs()
    with torch.no_grad():
        both = predictor(x["features"], x["query_features"], refer_embedding=x["refer_embedding"])
        first = predictor({k: v[:1] for k, v in x["features"].items()}, x["query_features"][:1],
                          refer_embedding=x["refer_embedding"][:1])
    torch.testing.assert_close(first.mask_logits[0], both.mask_logits[0], atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(first.refer_logits[0], both.refer_logits[0], atol=1e-4, rtol=1e-4)


def test_wrong_number_of_queries_is_an_error():
    predictor = make_predictor()
    x = make_inputs()
    with pytest.raises(ValueError, match="queries"):
        predictor(x["features"], x["query_features"][:, :3])


@pytest.mark.parametrize("points", [2, 4])
def test_deformable_attention_gives_transformers_numbers_and_gradients(points):
    from transformers.models.mask2former.modeling_mask2former import (
        Mask2FormerPixelDecoderEncoderMultiscaleDeformableAttention as Reference,
    )

    from hyperseg_ros.model.pixel_decoder import DeformableAttention

    torch.manual_seed(0)
    shapes = [(3, 5), (6, 10), (12, 20)]  # not square: x and y must not be swapped
    ours, reference = DeformableAttention(32, 4, 3, points), Reference(32, 4, 3, points)
    for p in ours.parameters():
        torch.nn.init.normal_(p, std=0.5)  # offsets large enough to leave the map: zero padding counts
    reference.load_state_dict(ours.state_dict())
    length = sum(h * w for h, w in shapes)
    x, pos = torch.randn(2, length, 32, requires_grad=True), torch.randn(2, length, 32)
    ref_points = torch.rand(2, length, 3, 2)
    outputs = []
    for module in (ours, reference):
        out, weights = module(x, encoder_hidden_states=x, position_embeddings=pos, reference_points=ref_points,
                              spatial_shapes_list=shapes, attention_mask=torch.zeros(2, length, dtype=torch.bool))
        (grad,) = torch.autograd.grad(out.square().sum(), x)
        outputs.append((out, weights, grad))
    for a, b in zip(*outputs):  # sums in another order: float rounding, relative to the values' size
        torch.testing.assert_close(a, b, atol=1e-6 * float(b.abs().max()), rtol=1e-4)
    assert outputs[0][0].abs().mean() > 0.1  # not a silent pass on zeros
