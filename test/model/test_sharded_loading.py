"""Sharded weights (model.safetensors.index.json + shards) load as strictly as one file: a weight
missing or left over is an error naming the file, and an index entry that is not a plain file name
of a regular file inside the model directory is refused, naming the entry."""
import json
import os
import shutil

import pytest
import torch
from safetensors.torch import load_file, save_file

from hyperseg_ros.model import load_model
from hyperseg_ros.model.loading import WEIGHTS_INDEX, ModelFileError


@pytest.fixture(scope="module")
def sharded(tiny, tmp_path_factory):
    path = tmp_path_factory.mktemp("sharded") / "tiny"
    model, tokenizer = tiny
    model.save_pretrained(path, max_shard_size="100KB")
    tokenizer.save_pretrained(path)
    return path


@pytest.fixture
def copy(sharded, tmp_path):
    return shutil.copytree(sharded, tmp_path / "model")


def _index(directory):
    return json.loads((directory / WEIGHTS_INDEX).read_text())


def _rewrite_index(directory, change):
    index = _index(directory)
    change(index["weight_map"])
    (directory / WEIGHTS_INDEX).write_text(json.dumps(index))


def test_the_shards_load_to_the_saved_weights(tiny, sharded):
    shards = sorted(p.name for p in sharded.glob("model-*.safetensors"))
    assert len(shards) >= 3 and not (sharded / "model.safetensors").exists()
    model, _ = load_model(str(sharded))
    saved = tiny[0].state_dict()
    assert all(torch.equal(v, saved[k]) for k, v in model.state_dict().items())


def test_a_weight_missing_from_index_and_shard_is_an_error_naming_it(copy):
    key = "predictor.pixel_decoder.mask_projection.weight"
    shard = copy / _index(copy)["weight_map"][key]
    state = load_file(shard)
    del state[key]
    save_file(state, shard, metadata={"format": "pt"})
    _rewrite_index(copy, lambda m: m.pop(key))
    with pytest.raises(ModelFileError, match=rf"missing weights {key.replace('.', '[.]')}"):
        load_model(str(copy))


def test_a_weight_the_index_maps_but_the_shard_lacks_is_an_error(copy):
    key = "seg_query"
    shard = copy / _index(copy)["weight_map"][key]
    state = load_file(shard)
    del state[key]
    save_file(state, shard, metadata={"format": "pt"})
    with pytest.raises(ModelFileError, match=rf"{shard.name}: weights .* maps here but the shard lacks seg_query"):
        load_model(str(copy))


def test_an_unexpected_weight_in_a_shard_and_the_index_is_an_error(copy):
    name = _index(copy)["weight_map"]["seg_query"]
    state = load_file(copy / name)
    state["surplus.weight"] = torch.zeros(3)
    save_file(state, copy / name, metadata={"format": "pt"})
    _rewrite_index(copy, lambda m: m.update({"surplus.weight": name}))
    with pytest.raises(ModelFileError, match=r"weights config\.json has no place for surplus\.weight"):
        load_model(str(copy))


def test_a_weight_in_a_shard_the_index_does_not_list_is_an_error(copy):
    name = _index(copy)["weight_map"]["seg_query"]
    state = load_file(copy / name)
    state["surplus.weight"] = torch.zeros(3)
    save_file(state, copy / name, metadata={"format": "pt"})
    with pytest.raises(ModelFileError, match=rf"{name}: weights .* does not map here surplus\.weight"):
        load_model(str(copy))


@pytest.mark.parametrize("entry", ["../model-00001.safetensors", "/etc/passwd", "sub/model.safetensors", "..", ".",
                                   ""])
def test_a_shard_entry_that_is_not_a_plain_file_name_is_refused(copy, entry):
    _rewrite_index(copy, lambda m: m.update({"seg_query": entry}))
    with pytest.raises(ModelFileError, match=rf"{WEIGHTS_INDEX}: shard entry {entry!r} is not a plain file name"):
        load_model(str(copy))


def test_a_shard_that_is_a_fifo_or_a_directory_or_missing_is_refused(copy):
    os.mkfifo(copy / "model-fifo.safetensors")
    (copy / "model-dir.safetensors").mkdir()
    for entry, what in (("model-fifo.safetensors", "a FIFO"), ("model-dir.safetensors", "a directory"),
                        ("model-gone.safetensors", "missing")):
        _rewrite_index(copy, lambda m: m.update({"seg_query": entry}))
        with pytest.raises(ModelFileError, match=rf"shard entry '{entry}': .*{entry} is {what}"):
            load_model(str(copy))


def test_a_shard_that_is_a_device_is_refused(copy):
    (copy / "model-dev.safetensors").symlink_to("/dev/zero")
    _rewrite_index(copy, lambda m: m.update({"seg_query": "model-dev.safetensors"}))
    with pytest.raises(ModelFileError, match=r"shard entry 'model-dev\.safetensors': .* is a device"):
        load_model(str(copy))


def test_an_index_that_is_not_one_and_an_index_beside_a_single_file_are_errors(copy):
    (copy / WEIGHTS_INDEX).write_text(json.dumps({"weight_map": []}))
    with pytest.raises(ModelFileError, match=rf"{WEIGHTS_INDEX}: not a safetensors index"):
        load_model(str(copy))
    (copy / WEIGHTS_INDEX).write_text(json.dumps({"weight_map": {"seg_query": "model.safetensors"}}))
    save_file({"seg_query": torch.zeros(1)}, copy / "model.safetensors")
    with pytest.raises(ModelFileError, match=r"both model\.safetensors and model\.safetensors\.index\.json"):
        load_model(str(copy))
