"""The quality tests' expected failures belong to the weights they were measured on: other weights
(a retrained model, even one copied over the shipped one) get no expected failure, and the ones they
get are strict (an expected failure that passes fails the run)."""
import json
from pathlib import Path

from quality_expected import EXPECTED_FAILURES, expected_failures, model_sha256, xfail_marks

RECORD = json.loads(EXPECTED_FAILURES.read_text())
NODEIDS = ["test/quality/" + case for case in RECORD["fails"]] + [
    "test/quality/test_easy_scenes.py::test_referring_finds_the_named_object[0]"]


def test_the_recorded_weights_get_their_strict_expected_failures():
    marks = xfail_marks(NODEIDS, RECORD["sha256"])
    assert set(marks) == set(NODEIDS[:-1]) and len(RECORD["fails"]) > 0
    assert all(m.kwargs["strict"] is True for m in marks.values())
    assert all(m.name == "xfail" for m in marks.values())


def test_other_weights_get_none(tmp_path):
    other = "0" * 64
    assert xfail_marks(NODEIDS, other) == {} and expected_failures(other) == frozenset()
    assert xfail_marks(NODEIDS, None) == {}  # a model directory without weights
    (tmp_path / "model.safetensors").write_bytes(b"retrained weights copied over the shipped ones")
    assert model_sha256(tmp_path) is None  # no config.json: not a model
    (tmp_path / "config.json").write_text("{}")
    assert xfail_marks(NODEIDS, model_sha256(tmp_path)) == {}


def test_the_shipped_model_with_other_thresholds_gets_none(tmp_path):
    import shutil

    shipped = Path(__file__).resolve().parents[2] / "models" / "hyperseg-world"
    for name in ("config.json", "model.safetensors"):
        shutil.copy(shipped / name, tmp_path / name)
    assert model_sha256(tmp_path) == model_sha256(shipped)
    config = json.loads((tmp_path / "config.json").read_text())
    config["score_thresholds"] = {"open_vocabulary": 0.05}  # same weights, other answers
    (tmp_path / "config.json").write_text(json.dumps(config))
    assert model_sha256(tmp_path) != model_sha256(shipped)
    assert model_sha256(tmp_path / "nowhere") is None


def test_the_record_is_of_sha256_and_names_cases_that_exist():
    assert len(RECORD["sha256"]) == 64 and int(RECORD["sha256"], 16) >= 0
    text = (Path(__file__).parent / "test_easy_scenes.py").read_text()
    for case in RECORD["fails"]:
        file, name = case.split("::")
        assert file == "test_easy_scenes.py" and f"def {name.split('[')[0]}(" in text, case
