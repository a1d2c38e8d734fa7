"""The guards of a test run (test/conftest.py): a test stuck in C code with the GIL held, which
pytest-timeout cannot interrupt, ends the run with every thread's stack in build/test-hang-<pid>.txt;
past HYPERSEG_TEST_DEADLINE_S the tests left fail at once."""
import itertools
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PROBE = "HYPERSEG_HANG_PROBE"


@pytest.mark.skipif(not os.environ.get(PROBE), reason="run by test_a_test_holding_the_gil_is_reported_and_ends_the_run")
def test_probe_holds_the_gil():
    sum(itertools.repeat(1, 10**13))  # one C call, minutes long, that never lets a signal handler run


def test_a_test_holding_the_gil_is_reported_and_ends_the_run():
    pytest.importorskip("pytest_timeout")
    env = dict(os.environ, **{PROBE: "1", "HYPERSEG_HANG_GRACE_S": "2"})
    proc = subprocess.Popen([sys.executable, "-P", "-m", "pytest", "-q", "-p", "no:cacheprovider", "--timeout=1",
                             f"{__file__}::test_probe_holds_the_gil"], env=env, cwd=ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    report = ROOT / "build" / f"test-hang-{proc.pid}.txt"
    try:
        out = proc.communicate(timeout=120)[0]
        assert proc.returncode == 1 and "passed" not in out, out
        text = report.read_text()
        assert text.startswith("test/unit/test_run_guards.py::test_probe_holds_the_gil did not end within 3 s")
        assert "in test_probe_holds_the_gil" in text, text
    finally:
        proc.kill()
        report.unlink(missing_ok=True)


def test_past_the_deadline_the_tests_left_fail_at_once():
    env = dict(os.environ, HYPERSEG_TEST_DEADLINE_S="0")
    run = subprocess.run([sys.executable, "-P", "-m", "pytest", "-q", "-p", "no:cacheprovider",
                          f"{__file__}::test_past_the_deadline_the_tests_left_fail_at_once"],
                         env=env, cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert run.returncode == 1 and "1 error" in run.stdout, run.stdout
    assert "not run: the run's deadline (HYPERSEG_TEST_DEADLINE_S=0 s) has passed" in run.stdout
