"""Every size of HyperSeg in one `PretrainedConfig`; `from_size` names the three we use.

Sizes are data: the same code builds the released 3B architecture, the embedded CPU model
(`small`) and the unit-test model (`tiny`). Sub-model sizes are kept as plain kwargs of the
transformers configs they build (`SiglipVisionConfig`, `SwinConfig`, `PhiConfig`) so that
`config.json` stays readable and round-trips.
"""
from __future__ import annotations

import copy

from transformers import PhiConfig, PretrainedConfig, SiglipVisionConfig, SwinConfig

from ..command import TASKS

PYRAMID_LEVELS = ("res2", "res3", "res4", "res5")
DEFAULT_SCORE_THRESHOLD = 0.5  # for a task whose threshold a model does not state

# How a model reads its inputs and scores its answers where the embedded model (trained here) and the
# release differ. The release's conventions are the class defaults; the sizes trained by this package
# state theirs, and so does every model directory's config.json.
CONVENTIONS_TRAINED_HERE: dict = dict(
    pyramid_padding="mean", image_resize="cv2", region_grid="centres", refer_period=False,
    open_vocabulary_scoring="sigmoid", answer_always=False, scores_at="stride4", category_prompts="parallel",
)

_SIZES: dict[str, dict] = {
    # The release: SigLIP-SO400M/14-384, Phi-2 2.7B, Swin-B at 1024, Mask2Former 256-d head.
    "3b": dict(
        vision_config=dict(hidden_size=1152, intermediate_size=4304, num_hidden_layers=27,
                           num_attention_heads=16, image_size=384, patch_size=14),
        pyramid_config=dict(image_size=1024, patch_size=4, embed_dim=128, depths=[2, 2, 18, 2],
                            num_heads=[4, 8, 16, 32], window_size=12, drop_path_rate=0.3),
        # 51200 rows match the released lm_head; the released embed_tokens has 50296 rows
        # (Phi-2 tokenizer + [SEG]): `embedding_rows` keeps the two apart.
        llm_config=dict(vocab_size=51200, hidden_size=2560, intermediate_size=10240,
                        num_hidden_layers=32, num_attention_heads=32, partial_rotary_factor=0.4,
                        max_position_embeddings=2048, hidden_act="gelu_new", layer_norm_eps=1e-5),
        embedding_rows=50296,
        num_mask_tokens=100, num_fine_grained_tokens=128,
        perceiver_dim=512, perceiver_heads=8, perceiver_dim_head=64, perceiver_ff_mult=4,
        pyramid_image_size=1024, vision_image_size=384, vision_feature_layer=-2, reid_dim=256,
        predictor_config=dict(hidden_dim=256, num_queries=100, encoder_layers=6, encoder_ffn_dim=1024,
                              decoder_layers=9, decoder_ffn_dim=2048, num_heads=8, num_points=4,
                              reid_dim=256),
    ),
    # The embedded CPU model: one 640x480 frame in <= ~60 ms on 2 cores (see scripts/bench_model.py).
    "small": dict(
        vision_config=dict(hidden_size=128, intermediate_size=512, num_hidden_layers=2,
                           num_attention_heads=2, image_size=128, patch_size=16),
        pyramid_config=dict(image_size=256, patch_size=4, embed_dim=32, depths=[1, 1, 2, 1],
                            num_heads=[1, 2, 4, 8], window_size=8, drop_path_rate=0.0),
        llm_config=dict(vocab_size=320, hidden_size=256, intermediate_size=1024, num_hidden_layers=4,
                        num_attention_heads=4, partial_rotary_factor=0.5, max_position_embeddings=512,
                        hidden_act="gelu_new", layer_norm_eps=1e-5),
        num_mask_tokens=16, num_fine_grained_tokens=32,
        perceiver_dim=128, perceiver_heads=4, perceiver_dim_head=32, perceiver_ff_mult=4,
        pyramid_image_size=256, vision_image_size=128, vision_feature_layer=-1, reid_dim=64,
        # 64-d head: the release's 3x3 FPN conv at stride 4 alone costs 1.2 GFLOP at 128-d (27% of the
        # frame); 64-d brings the whole frame from 4.5 to 2.7 GFLOP.
        predictor_config=dict(hidden_dim=64, num_queries=16, encoder_layers=2, encoder_ffn_dim=256,
                              decoder_layers=3, decoder_ffn_dim=256, num_heads=4, num_points=4,
                              reid_dim=64),
        mask_shape_size=24,
        **CONVENTIONS_TRAINED_HERE,
    ),
    # Unit tests: every module exists, everything as small as it goes.
    "tiny": dict(
        vision_config=dict(hidden_size=16, intermediate_size=32, num_hidden_layers=1,
                           num_attention_heads=2, image_size=32, patch_size=8),
        pyramid_config=dict(image_size=64, patch_size=4, embed_dim=8, depths=[1, 1, 1, 1],
                            num_heads=[1, 1, 2, 2], window_size=2, drop_path_rate=0.0),
        llm_config=dict(vocab_size=128, hidden_size=32, intermediate_size=64, num_hidden_layers=1,
                        num_attention_heads=2, partial_rotary_factor=0.5, max_position_embeddings=256,
                        hidden_act="gelu_new", layer_norm_eps=1e-5),
        num_mask_tokens=4, num_fine_grained_tokens=4,
        perceiver_dim=16, perceiver_heads=2, perceiver_dim_head=8, perceiver_ff_mult=2,
        pyramid_image_size=64, vision_image_size=32, vision_feature_layer=-1, reid_dim=8,
        predictor_config=dict(hidden_dim=16, num_queries=4, encoder_layers=1, encoder_ffn_dim=32,
                              decoder_layers=3, decoder_ffn_dim=32, num_heads=2, num_points=2,
                              reid_dim=8),
        **CONVENTIONS_TRAINED_HERE,
    ),
}


class HyperSegConfig(PretrainedConfig):
    """Sizes of every HyperSeg module (see `from_size`).

    vision_config / pyramid_config / llm_config: kwargs of SiglipVisionConfig / SwinConfig /
    PhiConfig. predictor_config: kwargs of SegmentationPredictor besides `in_channels`.
    embedding_rows: rows of the LLM input embedding (None = llm vocab_size).
    vision_feature_layer: index into SigLIP's hidden states (-2 = penultimate, as released).
    default_categories: the model's default vocabulary (see below).
    score_thresholds: {task: score} below which the model's answers are not published, chosen on
        `val` by the rule in the model card (training/calibrate.py); None or a missing task = 0.5.

    Conventions (defaults = the release; `CONVENTIONS_TRAINED_HERE` = the embedded model):
    pyramid_padding: "grey" pads the resized image with grey 128 before normalising (detectron2
        FixedSizeCrop); "mean" pads with the mean (0 after normalising).
    image_resize: "pil" resizes as released (PIL bilinear for the pyramid, SigLIP's PIL bicubic with
        antialias for the vision image and region masks); "cv2" uses OpenCV area/linear/cubic.
    region_grid: "release" samples SigLIP cell k of a visual prompt at k/g of the grid (26k/27 in
        cells for 3b: grid_sample with align_corners); "centres" samples the cell centres.
    refer_period: a referring sentence ends with "." (RefCOCO prompts as released).
    open_vocabulary_scoring: "softmax_background" appends a "background" category and scores each
        query by softmax over categories + background (PSALM, the release's parent); "sigmoid" scores
        the best category by its sigmoid, no background.
    answer_always: referring/reasoning publish the top-1 mask whatever its score (the release's
        evaluation); False abstains below the session's score threshold ("no such object").
    scores_at: "image" scores masks after the release's upsampling to the image (padded input, crop,
        image); "stride4" scores the stride-4 logits and upsamples only the kept masks (cheaper).
    category_prompts: "sequential" lists the "name [SEG]" spans one after another, each seeing the
        ones before it (the release); "parallel" gives every span the same positions and hides the
        spans from each other, so a category's embedding depends on its name only, never on its
        place in the list (multimodal_sequence builds the positions, vllm.span_attention_mask the mask).

    latent_handoff_momentum: share m of a stream's current FVP latents kept when a language pass hands
        its new ones to the next (session.py): next = m * current + (1 - m) * new, the current being the
        learned latents on the first hand-off. 0 = the release (the new latents replace them); in [0, 1).
        On a still image the embedded model's undamped latents alternate between two states from one
        language pass to the next (and its answers with them); damped, the two draw together (the
        second pass starts from m of the learned latents), so a still stream keeps its first answer.
    """

    model_type = "hyperseg_ros"

    vision_config: dict | None = None
    pyramid_config: dict | None = None
    llm_config: dict | None = None
    embedding_rows: int | None = None
    num_mask_tokens: int = 100
    num_fine_grained_tokens: int = 128
    perceiver_dim: int = 512
    perceiver_heads: int = 8
    perceiver_dim_head: int = 64
    perceiver_ff_mult: int = 4
    pyramid_image_size: int = 1024
    vision_image_size: int = 384
    vision_feature_layer: int = -2
    reid_dim: int = 256
    predictor_config: dict | None = None
    # side of the window the mask-shape encoder reads (mask_shape.py, not in the release); 0 = none
    mask_shape_size: int = 0
    # hidden width of the open-vocabulary name scorer (name_scorer.py, not in the release; needs the encoder); 0 = none
    name_scorer_hidden: int = 0
    region_point_radius: int = 10  # px of the input image: a point prompt is a disc (release: 10)
    # Open-vocabulary categories a node answers before its first command: the world's shapes for
    # a model trained on the procedural world; None (a released checkpoint) = wait for a command.
    default_categories: list[str] | None = None
    score_thresholds: dict[str, float] | None = None
    pyramid_padding: str = "grey"
    image_resize: str = "pil"
    region_grid: str = "release"
    refer_period: bool = True
    open_vocabulary_scoring: str = "softmax_background"
    answer_always: bool = True
    scores_at: str = "image"
    category_prompts: str = "sequential"
    latent_handoff_momentum: float = 0.0

    def __post_init__(self, **kwargs):
        for key, allowed in (("pyramid_padding", ("grey", "mean")), ("image_resize", ("pil", "cv2")),
                             ("region_grid", ("release", "centres")), ("scores_at", ("image", "stride4")),
                             ("open_vocabulary_scoring", ("softmax_background", "sigmoid")),
                             ("category_prompts", ("sequential", "parallel"))):
            if getattr(self, key) not in allowed:
                raise ValueError(f"{key} must be one of {allowed}, got {getattr(self, key)!r}")
        momentum = self.latent_handoff_momentum
        if isinstance(momentum, bool) or not isinstance(momentum, (int, float)) or not 0.0 <= momentum < 1.0:
            raise ValueError(f"latent_handoff_momentum must be a number in [0, 1), got {momentum!r}")
        for task, value in (self.score_thresholds or {}).items():
            if task not in TASKS or isinstance(value, bool) or not isinstance(value, (int, float)) \
                    or not 0.0 <= value <= 1.0:
                raise ValueError(f"score_thresholds: {task!r}: {value!r} (a task of {', '.join(TASKS)} -> a score in [0, 1])")
        released = _SIZES["3b"]
        for key in ("vision_config", "pyramid_config", "llm_config", "predictor_config"):
            if getattr(self, key) is None:
                setattr(self, key, copy.deepcopy(released[key]))
        super().__post_init__(**kwargs)

    @classmethod
    def from_size(cls, name: str, **overrides) -> HyperSegConfig:
        """`name` in ("3b", "small", "tiny"); `overrides` replace top-level fields, and
        `vocab_size=N` sets the LLM vocabulary (and embedding rows) to a tokenizer's length."""
        if name not in _SIZES:
            raise ValueError(f"unknown HyperSeg size {name!r}; expected one of {', '.join(_SIZES)}")
        sizes = copy.deepcopy(_SIZES[name])
        vocab_size = overrides.pop("vocab_size", None)
        if vocab_size is not None:
            sizes["llm_config"]["vocab_size"] = int(vocab_size)
            sizes["embedding_rows"] = None
        sizes.update(overrides)
        return cls(**sizes)

    # ---- derived sizes (read-only views of the data above) ----
    def vision(self) -> SiglipVisionConfig:
        return SiglipVisionConfig(**{"vision_use_head": False, **self.vision_config,
                                     "image_size": self.vision_image_size})

    def pyramid(self) -> SwinConfig:
        return SwinConfig(**{**self.pyramid_config, "image_size": self.pyramid_image_size,
                             "out_features": ["stage1", "stage2", "stage3", "stage4"]})

    def llm(self) -> PhiConfig:
        return PhiConfig(**{"tie_word_embeddings": False, "use_cache": False, **self.llm_config})

    def score_threshold(self, task: str) -> float:
        """The model's own score threshold for `task` (0.5 where it states none)."""
        return float((self.score_thresholds or {}).get(task, DEFAULT_SCORE_THRESHOLD))

    @property
    def llm_width(self) -> int:
        return int(self.llm_config["hidden_size"])

    @property
    def pyramid_channels(self) -> list[int]:
        """Channels of res2..res5 (Swin doubles them at each stage)."""
        embed = int(self.pyramid_config["embed_dim"])
        return [embed * 2**i for i in range(4)]

    @property
    def vision_grid(self) -> int:
        """Side of SigLIP's patch grid (27 for 384 px / 14)."""
        return self.vision_image_size // int(self.vision_config["patch_size"])
