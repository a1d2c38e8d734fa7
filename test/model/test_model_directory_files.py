"""Every file of a model directory is read only as a regular file of bounded size, and config.json's
sizes are bounded by the weights' headers before anything is allocated: no FIFO, device or symlink
loop can block or misname a load, no malformed JSON escapes as a bare RecursionError or KeyError,
a config claiming a huge vocabulary is refused without allocating it, naming the field, and no file
or header is larger than a stop signal can wait for (one native call parses it)."""
import json
import os
import struct
import subprocess
import sys
from pathlib import Path

import pytest

from hyperseg_ros.model import load_model
from hyperseg_ros.model.loading import MAX_HEADER_BYTES, MAX_TEXT_BYTES, ModelFileError

ROOT = Path(__file__).resolve().parents[2]


def _replace(path: Path, make) -> None:
    path.unlink()
    make(path)


@pytest.mark.parametrize("name", ["config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json"])
@pytest.mark.parametrize("what, make", [
    ("a FIFO", os.mkfifo),
    ("a device", lambda p: p.symlink_to("/dev/zero")),
    ("a symlink loop", lambda p: p.symlink_to(p.name)),
])
def test_a_file_that_is_no_regular_file_is_refused_naming_it(model_copy, name, what, make):
    _replace(model_copy / name, make)
    with pytest.raises(ModelFileError, match=rf"{model_copy / name}: {what}"):
        load_model(str(model_copy))


def test_a_json_file_over_the_size_limit_is_refused_before_it_is_read(model_copy):
    with open(model_copy / "tokenizer_config.json", "r+b") as f:
        f.truncate(MAX_TEXT_BYTES + 1)  # sparse: nothing is written
    with pytest.raises(ModelFileError, match=rf"tokenizer_config\.json: {MAX_TEXT_BYTES + 1} bytes, over"):
        load_model(str(model_copy))


def test_a_safetensors_header_over_the_size_limit_is_refused_before_it_is_parsed(model_copy):
    path = model_copy / "model.safetensors"
    data = path.read_bytes()
    size = struct.unpack("<Q", data[:8])[0]
    head = data[8:8 + size] + b" " * (MAX_HEADER_BYTES + 8 - size)  # valid: safetensors pads headers with spaces
    path.write_bytes(struct.pack("<Q", len(head)) + head + data[8 + size:])
    with pytest.raises(ModelFileError, match=rf"model\.safetensors: a safetensors header of {len(head)} bytes, over"):
        load_model(str(model_copy))


@pytest.mark.parametrize("name", ["config.json", "model.safetensors.index.json"])
def test_json_nested_too_deep_names_the_file(model_copy, name):
    (model_copy / name).write_text("[" * 100_000 + "]" * 100_000)
    if name != "config.json":  # an index beside the single file is refused anyway: make it the only weights
        (model_copy / "model.safetensors").rename(model_copy / "model-00001-of-00001.safetensors")
    with pytest.raises(ModelFileError, match=rf"{name}: not valid JSON \(RecursionError"):
        load_model(str(model_copy))


def test_a_tokenizer_json_without_its_added_tokens_names_the_directory(model_copy):
    path = model_copy / "tokenizer.json"
    tokenizer = json.loads(path.read_text())
    del tokenizer["added_tokens"]
    path.write_text(json.dumps(tokenizer))
    with pytest.raises(ValueError, match=rf"{model_copy}: cannot load the tokenizer"):
        load_model(str(model_copy))


PEAK_SCRIPT = """
import json, resource, sys
from hyperseg_ros.model import load_model
try:
    load_model(sys.argv[1])
    outcome = "loaded"
except ValueError as err:
    outcome = str(err)
print(json.dumps({"peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, "outcome": outcome}))
"""


def _peak_load(directory: Path) -> dict:
    """load_model(directory) in a fresh process: its peak RSS and what happened."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    out = subprocess.run([sys.executable, "-P", "-c", PEAK_SCRIPT, str(directory)], env=env, check=True,
                         capture_output=True, text=True, timeout=600).stdout
    return json.loads(out.strip().splitlines()[-1])


def test_a_config_claiming_a_million_word_vocabulary_is_refused_without_allocating_it(model_copy, saved):
    path = model_copy / "config.json"
    config = json.loads(path.read_text())
    config["llm_config"]["vocab_size"] = 1_000_000
    path.write_text(json.dumps(config))
    normal, huge = _peak_load(saved), _peak_load(model_copy)
    assert normal["outcome"] == "loaded"
    assert "config.json asks for" in huge["outcome"] and "a size in config.json is larger" in huge["outcome"]
    assert "llm_config.vocab_size 1000000" in huge["outcome"], huge  # the field, not only the module
    assert huge["peak_mb"] < normal["peak_mb"] + 100, (normal, huge)
