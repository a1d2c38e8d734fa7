"""A model directory that cannot be served is an error naming the file (and key), found before
anything is built: no random weights served, no 3B build from an empty config, no pickle read."""
import json

import pytest
import torch
from safetensors.torch import load_file, save_file

from hyperseg_ros.model import load_model
from hyperseg_ros.model.hyperseg import HyperSeg


@pytest.fixture
def no_build(monkeypatch):
    """Fails the test if a HyperSeg module is built (the checks must come first)."""
    def refuse(self, config):
        raise AssertionError("a HyperSeg module was built before the files were checked")

    monkeypatch.setattr(HyperSeg, "__init__", refuse)


def _edit_config(directory, change):
    path = directory / "config.json"
    config = json.loads(path.read_text())
    change(config)
    path.write_text(json.dumps(config))


def test_the_saved_model_loads(saved):
    model, _ = load_model(str(saved))
    assert model.predictor.pixel_decoder.mask_projection.weight.abs().sum() > 0


def test_a_missing_weight_is_an_error_naming_file_and_key(model_copy):
    weights = model_copy / "model.safetensors"
    state = load_file(weights)
    del state["predictor.pixel_decoder.mask_projection.weight"]
    save_file(state, weights, metadata={"format": "pt"})
    with pytest.raises(ValueError, match=r"model\.safetensors.*predictor\.pixel_decoder\.mask_projection\.weight"):
        load_model(str(model_copy))


def test_a_config_with_an_extra_layer_is_an_error_naming_the_missing_weights(model_copy):
    _edit_config(model_copy, lambda c: c["llm_config"].update(num_hidden_layers=c["llm_config"]["num_hidden_layers"] + 1))
    with pytest.raises(ValueError, match=r"model\.safetensors: missing weights llm\.model\.layers\.1\."):
        load_model(str(model_copy))


def test_a_mis_shaped_weight_is_an_error(model_copy):
    weights = model_copy / "model.safetensors"
    state = load_file(weights)
    state["seg_query"] = torch.zeros(state["seg_query"].shape[0] + 1, state["seg_query"].shape[1])
    save_file(state, weights, metadata={"format": "pt"})
    with pytest.raises(ValueError, match=r"model\.safetensors: mis-shaped weights seg_query"):
        load_model(str(model_copy))


@pytest.mark.parametrize("config", [{}, {"model_type": "hyperseg_ros"}, [1, 2]])
def test_an_empty_config_is_an_error_before_any_module_is_built(model_copy, no_build, config):
    (model_copy / "config.json").write_text(json.dumps(config))
    with pytest.raises(ValueError, match=r"config\.json: (missing field 'vision_config'|expected a JSON object)"):
        load_model(str(model_copy))


def test_a_config_field_of_the_wrong_type_is_named(model_copy, no_build):
    _edit_config(model_copy, lambda c: c["predictor_config"].update(num_queries="four"))
    with pytest.raises(ValueError, match=r"config\.json: predictor_config\.num_queries must be int"):
        load_model(str(model_copy))


def test_a_config_that_is_not_json_names_the_file(model_copy, no_build):
    (model_copy / "config.json").write_text("")
    with pytest.raises(ValueError, match=r"config\.json: not valid JSON"):
        load_model(str(model_copy))


def test_weights_in_a_pickle_are_never_read(model_copy, monkeypatch):
    state = load_file(model_copy / "model.safetensors")
    (model_copy / "model.safetensors").unlink()
    torch.save(state, model_copy / "pytorch_model.bin")  # only written, to be refused

    def refuse(*args, **kwargs):
        raise AssertionError("torch.load was called")

    monkeypatch.setattr(torch, "load", refuse)
    with pytest.raises(ValueError, match=r"model\.safetensors: missing; weights are read from safetensors only "
                                         r"\(pytorch_model\.bin is not loaded"):
        load_model(str(model_copy))


def test_a_missing_tokenizer_names_the_directory(model_copy):
    for name in ("tokenizer.json", "tokenizer_config.json"):
        (model_copy / name).unlink(missing_ok=True)
    with pytest.raises(FileNotFoundError, match=rf"{model_copy}: no tokenizer \(tokenizer\.json"):
        load_model(str(model_copy))


def test_corrupt_weights_name_the_file(model_copy):
    (model_copy / "model.safetensors").write_bytes(b"\x00" * 64)
    with pytest.raises(ValueError, match=r"model\.safetensors: not a readable safetensors file"):
        load_model(str(model_copy))
