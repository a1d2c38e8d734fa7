"""The fault list of `make test-faults` still applies to the code: each replacement finds its text once,
changes the file, and names tests that exist."""
import importlib.util
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
spec = importlib.util.spec_from_file_location("test_faults_script", ROOT / "scripts" / "test_faults.py")
script = importlib.util.module_from_spec(spec)
spec.loader.exec_module(script)
FAULTS = script.load()


def test_names_are_unique_and_the_four_of_issue_24_are_listed():
    names = [f["name"] for f in FAULTS]
    assert len(names) == len(set(names))
    assert {"open-vocabulary-first-category", "training-without-optimizer-step", "precision-recall-ignore-label",
            "bag-report-any-overlap-is-found"} <= set(names)


@pytest.mark.parametrize("fault", FAULTS, ids=[f["name"] for f in FAULTS])
def test_each_fault_applies_once_and_names_existing_tests(fault):
    changed = script.apply(fault, ROOT)  # raises unless `old` occurs exactly once
    assert changed != (ROOT / fault["file"]).read_text()
    compile(changed, fault["file"], "exec")  # a fault is a wrong program, not a syntax error
    for test in fault["tests"]:
        assert (ROOT / test.split("::")[0]).is_file(), test


def test_a_moved_text_is_reported_not_applied(tmp_path):
    (tmp_path / "m.py").write_text("x = 1\nx = 1\n")
    with pytest.raises(ValueError, match="2 times"):
        script.apply({"name": "f", "file": "m.py", "old": "x = 1", "new": "x = 2"}, tmp_path)
