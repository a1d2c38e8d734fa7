"""Every bash and python block of the README runs, or says why it cannot.

A block's fence names it: ```` ```bash run ````, ```` ```python run node ```` (run while a node in
/robot is fed camera frames: a bag played in a loop), or ```` ```bash skip: REASON ````. Blocks run
in a scratch copy of the checkout (links to its files, `.venv` = this interpreter's prefix, an empty
`out/`), with the venv's executables first on PATH, in the test's ROS domain.
"""
from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from live_node import ROOT

README = ROOT / "README.md"
FENCE = re.compile(r"^```(bash|python)(?:[ \t]+([^\n]*))?\n(.*?)^```$", re.M | re.S)
MARKS = ("run", "run node", "skip: ")
SNIPPET_TIMEOUT_S = 300  # the slowest block takes ~30 s


def blocks(text: str) -> list[tuple[int, str, str, str]]:
    """(line, language, mark, code) of every bash/python block."""
    return [(text.count("\n", 0, m.start()) + 1, m.group(1), (m.group(2) or "").strip(), m.group(3))
            for m in FENCE.finditer(text)]


BLOCKS = blocks(README.read_text())


def test_every_block_is_marked():
    assert len(BLOCKS) >= 8
    unmarked = [(line, mark) for line, _, mark, _ in BLOCKS if mark not in MARKS[:2] and not
                (mark.startswith(MARKS[2]) and len(mark) > len(MARKS[2]) + 10)]
    assert not unmarked, f"README blocks without `run`, `run node` or `skip: <reason>`: {unmarked}"


def test_the_marks_are_read():
    text = "```bash run\nls\n```\n\n```python skip: needs a camera\nx\n```\n```text\nno\n```\n"
    assert blocks(text) == [(1, "bash", "run", "ls\n"), (5, "python", "skip: needs a camera", "x\n")]


@pytest.fixture(scope="module")
def workdir(tmp_path_factory) -> Path:
    work = tmp_path_factory.mktemp("readme")
    for entry in ROOT.iterdir():
        if entry.name not in {".git", ".venv", "build", "out", "log", "install"}:
            (work / entry.name).symlink_to(entry)
    (work / ".venv").symlink_to(sys.prefix)
    (work / "out").mkdir()
    return work


def _env(ros_env: dict) -> dict:
    return dict(ros_env, PATH=os.pathsep.join([str(Path(sys.prefix) / "bin"), os.environ.get("PATH", "")]))


def _run(language: str, code: str, work: Path, env: dict, name: str) -> subprocess.CompletedProcess:
    if language == "python":
        script = work / "out" / f"{name}.py"
        script.write_text(code)
        cmd = [sys.executable, "-P", str(script)]
    else:
        cmd = ["bash", "-e", "-o", "pipefail", "-c", code]
    proc = subprocess.Popen(cmd, cwd=work, env=dict(env, PYTHONFAULTHANDLER="1"), stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, start_new_session=True)
    try:
        out, _ = proc.communicate(timeout=SNIPPET_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        out = _hung(proc, work)
    finally:  # what the block left running in the background
        for sig in (signal.SIGINT, signal.SIGKILL):
            try:
                os.killpg(proc.pid, sig)
            except ProcessLookupError:
                break
            time.sleep(2)
    return subprocess.CompletedProcess(cmd, proc.returncode, out)


def _hung(proc: subprocess.Popen, work: Path) -> str:
    """What a block that ran past SNIPPET_TIMEOUT_S was doing: its processes, then the Python
    stack of each (faulthandler answers SIGABRT), its output and the tail of out/*.log."""
    try:
        ps = subprocess.run(["ps", "-o", "pid,stat,etimes,wchan:20,args", "-g", str(proc.pid)],
                            capture_output=True, text=True).stdout
    except FileNotFoundError:  # no procps
        ps = ""
    out = ""
    for sig in (signal.SIGABRT, signal.SIGKILL):  # then what it printed, kept by Popen since it started
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            pass
        try:
            out, _ = proc.communicate(timeout=20)
            break
        except subprocess.TimeoutExpired:
            continue
    logs = "".join(f"--- {log.name} (tail)\n{log.read_text(errors='replace')[-3000:]}"
                   for log in sorted((work / "out").glob("*.log")))
    return f"{out}\n--- timed out after {SNIPPET_TIMEOUT_S} s; processes then:\n{ps}{logs}"


def test_a_hung_block_is_reported_with_the_stack_it_hung_in(tmp_path, monkeypatch):
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "node.log").write_text("node started\n")
    monkeypatch.setattr(sys.modules[__name__], "SNIPPET_TIMEOUT_S", 3)
    code = f"echo before\n{sys.executable} -c 'import time\ndef waiting_forever():\n    time.sleep(60)\nwaiting_forever()'\n"
    run = _run("bash", code, tmp_path, dict(os.environ), "hung")
    assert run.returncode != 0
    assert "before" in run.stdout and "timed out after 3 s" in run.stdout
    assert "in waiting_forever" in run.stdout, run.stdout  # faulthandler's stack of the stuck process
    assert "--- node.log (tail)\nnode started" in run.stdout


def _params(mark: str) -> list:
    return [pytest.param(language, code, id=f"README_line_{line}") for line, language, m, code in BLOCKS
            if m == mark]


@pytest.mark.parametrize("language, code", _params("run"))
def test_block_runs(language, code, workdir, ros_env):
    run = _run(language, code, workdir, _env(ros_env), f"block{abs(hash(code))}")
    assert run.returncode == 0, run.stdout[-12000:]


@pytest.fixture(scope="class")
def node(class_ros_env, workdir):
    """A node in /robot fed by a looping camera bag; yields the environment of its graph."""
    env = _env(class_ros_env)
    log = open(workdir / "out" / "node.log", "wb")
    proc = subprocess.Popen([sys.executable, "-P", "-m", "hyperseg_ros.perception_node", "--ros-args",
                             "--params-file", "config/perception.yaml", "-p", "num_threads:=1",
                             "-r", "__ns:=/robot", "-r", "image:=/camera/image_raw"],
                            cwd=workdir, env=env, stdout=log, stderr=subprocess.STDOUT)
    camera = subprocess.Popen([sys.executable, "-P", "-m", "hyperseg_ros.bag", "-q", "play",
                               str(ROOT / "test" / "data" / "bag_rgb8_mcap"), "--loop", "--topics",
                               "/camera/image_raw", "--wait-for-subscribers", "180"],
                              cwd=workdir, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 180
    while "serving" not in (workdir / "out" / "node.log").read_text(errors="replace"):
        assert proc.poll() is None and time.monotonic() < deadline, (workdir / "out" / "node.log").read_text()
        time.sleep(0.5)
    yield env
    for running in (camera, proc):
        running.send_signal(signal.SIGINT)
        running.wait(timeout=60)
    log.close()
    assert proc.returncode == 0


class TestWithANode:
    """The `run node` blocks, against one node in /robot fed by a looping camera bag."""

    @pytest.mark.parametrize("language, code", _params("run node"))
    def test_block_runs_against_the_node(self, language, code, workdir, node):
        run = _run(language, code, workdir, node, f"block{abs(hash(code))}")
        print(run.stdout)
        assert run.returncode == 0, run.stdout[-4000:]
