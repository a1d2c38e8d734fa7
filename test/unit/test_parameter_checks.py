"""Every parameter has a checked type and range (parameters.PARAMETERS): a value outside it is
refused naming the parameter, before any model is loaded."""
import math

import pytest

from hyperseg_ros.parameters import CORES, PARAMETERS, build_pipeline, check, check_value, defaults, unknown_names

BAD = [
    ("image_reliability", "Reliable"), ("image_reliability", "foo"), ("image_reliability", ""),
    ("max_frame_age_ms", math.nan), ("max_frame_age_ms", math.inf), ("max_frame_age_ms", -1.0),
    ("diagnostics_period_s", 0.0), ("diagnostics_period_s", -1.0), ("diagnostics_period_s", math.nan),
    ("temporal_reset_gap_s", -1.0), ("temporal_reset_gap_s", math.nan),
    ("llm_rerun_score_threshold", 5.0), ("llm_rerun_score_threshold", math.nan),
    ("image_silence_warn_s", -1.0), ("image_silence_warn_s", math.nan),
    ("num_threads", 4096), ("num_threads", CORES + 1), ("num_threads", -1),
    ("device", "gpu"), ("device", "cuda:x"), ("device", ""),
    ("max_instances", "foo"), ("max_instances", 0), ("max_instances", True), ("autostart", "yes"),
    ("llm_every_n_frames", 0), ("score_threshold", 1.5), ("categories", "circle"), ("categories", [1, 2]),
    ("text_task", "visual_prompt"), ("dtype", "int8"), ("max_categories", 10**9),
]


@pytest.mark.parametrize("name, value", BAD)
def test_a_value_outside_the_table_is_refused_naming_the_parameter(name, value):
    with pytest.raises(ValueError, match=rf"^parameter {name} must"):
        check_value(name, value)
    with pytest.raises(ValueError, match=rf"parameter {name}"):
        check({**defaults(), name: value})


def test_every_default_passes_and_an_integer_is_taken_for_a_float():
    assert check(defaults())["max_frame_age_ms"] == 500.0
    assert check_value("max_frame_age_ms", 300) == 300.0 and isinstance(check_value("max_frame_age_ms", 300), float)
    assert all(p.type in (bool, int, float, str, list) for p in PARAMETERS.values())


def test_categories_are_held_to_the_command_limits():
    with pytest.raises(ValueError, match=r"parameter categories has 33 names \(max_categories 32\)"):
        check({**defaults(), "categories": [f"c{i}" for i in range(33)]})
    with pytest.raises(ValueError, match=r"parameter categories has a name of 41 characters"):
        check({**defaults(), "categories": ["x" * 41]})
    assert check({**defaults(), "categories": ["x" * 41], "max_category_chars": 50})["categories"] == ["x" * 41]


def test_a_missing_cuda_device_is_refused_before_the_model_loads(monkeypatch):
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    params = {**defaults(), "device": "cuda:1", "model_path": "/nonexistent"}
    with pytest.raises(ValueError, match=r"parameter device is 'cuda:1', but torch sees 0 CUDA device"):
        build_pipeline(params)  # a load would raise FileNotFoundError for the path


def test_unknown_names_are_found():
    assert unknown_names(["max_instances", "max_instance", "categries"]) == ["categries", "max_instance"]
