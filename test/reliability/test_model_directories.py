"""Reliability probes of model directories (issue 22): shard entries that are no file of the
directory, SIGTERM inside a slow configure, a config.json claiming a huge vocabulary.

Times count from the node's "loading model" line (its ROS time stamp): start-up before it (imports,
parameters) takes tens of seconds on a busy machine and is probed elsewhere.
"""
import json
import math
import os
import re
import shutil
import signal
import struct
import time
from pathlib import Path

import pytest
from live_node import DISCOVERY_TIMEOUT_S, NodeProcess
from safetensors import safe_open

from hyperseg_ros.model.loading import MAX_HEADER_BYTES, MAX_TEXT_BYTES

LOADING = "loading model "
SHARD_EXIT_S = 5.0  # the bounds: functional limits (no hang), not speed
SIGTERM_EXIT_S = 2.0
RSS_MARGIN_MB = 100


def _start(ros_env, tmp_path: Path, model: Path, name: str) -> NodeProcess:
    return NodeProcess(ros_env, tmp_path / f"{name}.log", {"model_path": str(model), "num_threads": 1, "device": "cpu"})


def _stamp(node: NodeProcess, text: str, timeout_s: float = DISCOVERY_TIMEOUT_S) -> float:
    """The ROS time stamp (wall clock, s) of the node's first log line holding `text`."""
    deadline = time.monotonic() + timeout_s
    while True:
        ended = os.waitid(os.P_PID, node.proc.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT)  # not reaped: see _wait_exit
        line = next((line for line in node.log().splitlines() if text in line), None)
        if line is not None:
            return float(line.split("] [")[1])
        if ended is not None or time.monotonic() > deadline:
            pytest.fail(f"no line with {text!r}:\n{node.log()[-3000:]}")
        time.sleep(0.01)


def _wait_exit(node: NodeProcess, since: float, limit_s: float) -> tuple[int | None, float, float]:
    """(exit code, wall seconds from `since`, peak RSS in MB) of the node; the code is None and the
    seconds inf when it still runs `limit_s` after `since` (it is then killed)."""
    pid = node.proc.pid
    while True:
        done, status, usage = os.wait4(pid, os.WNOHANG)
        if done:
            seconds = time.time() - since
            node.proc.returncode = code = os.waitstatus_to_exitcode(status)
            node.stop()  # closes its log
            return code, seconds, usage.ru_maxrss / 1024
        if time.time() > since + limit_s:
            os.kill(pid, signal.SIGKILL)
            _, _, usage = os.wait4(pid, 0)
            node.proc.returncode = -signal.SIGKILL
            node.stop()
            return None, math.inf, usage.ru_maxrss / 1024
        time.sleep(0.005)


def _copy(model_dir: Path, to: Path, *skip: str) -> Path:
    return Path(shutil.copytree(model_dir, to, ignore=shutil.ignore_patterns("*.png", "*.md", *skip)))


def _error_lines(log: str) -> str:
    return "\n".join(line for line in log.splitlines() if "[ERROR]" in line)


# ---- shard entries that are no regular file of the directory ----
def _naming_a_shard(model_dir: Path, root: Path, case: str) -> tuple[Path, str]:
    """A copy of the model whose model.safetensors.index.json maps every weight to one entry."""
    directory = _copy(model_dir, root / "model", "model.safetensors")
    other = root / "other"
    other.mkdir()
    shutil.copy(model_dir / "model.safetensors", other)  # a real model file outside the directory
    entry = {"a FIFO": "model-00001-of-00001.safetensors", "/dev/zero": "/dev/zero",
             "../other": "../other/model.safetensors", "an absolute path": str(other / "model.safetensors")}[case]
    if case == "a FIFO":
        os.mkfifo(directory / entry)
    with safe_open(model_dir / "model.safetensors", "pt") as f:
        weight_map = dict.fromkeys(f.keys(), entry)
    (directory / "model.safetensors.index.json").write_text(json.dumps({"metadata": {}, "weight_map": weight_map}))
    return directory, entry


@pytest.mark.parametrize("case", ["a FIFO", "/dev/zero", "../other", "an absolute path"])
def test_a_shard_that_is_no_file_of_the_directory_ends_the_node_naming_it(ros_env, model_dir, tmp_path, probe, case):
    directory, entry = _naming_a_shard(model_dir, tmp_path / "models", case)
    node = _start(ros_env, tmp_path, directory, "node")
    loading = _stamp(node, LOADING)
    code, seconds, _ = _wait_exit(node, loading, SHARD_EXIT_S + 10)
    errors = _error_lines(node.log())
    probe.update(entry=entry, exit_code=code, seconds_from_loading=round(seconds, 2), named=entry in errors)
    assert code == 1 and seconds <= SHARD_EXIT_S and entry in errors, node.log()[-3000:]


# ---- SIGTERM inside a slow configure ----
def _tokenizer_at_the_limit(model_dir: Path, root: Path) -> Path:
    """A copy of the model whose tokenizer.json is padded with words to just under MAX_TEXT_BYTES."""
    directory = _copy(model_dir, root / "big_tokenizer")
    path = directory / "tokenizer.json"
    tokenizer = json.loads(path.read_text())
    vocab = tokenizer["model"]["vocab"]
    words, first = (MAX_TEXT_BYTES - len(path.read_bytes())) // len('"w00000000":1000000,'), len(vocab)
    vocab.update((f"w{i:08d}", first + i) for i in range(words))  # ids of at most 7 digits
    path.write_text(json.dumps(tokenizer, separators=(",", ":")))
    assert MAX_TEXT_BYTES * 0.9 < path.stat().st_size <= MAX_TEXT_BYTES
    return directory


def _header_at_the_limit(model_dir: Path, root: Path) -> Path:
    """A copy of the model whose safetensors header lists empty tensors up to just under MAX_HEADER_BYTES."""
    directory = _copy(model_dir, root / "big_header", "model.safetensors")
    data = (model_dir / "model.safetensors").read_bytes()
    size = struct.unpack("<Q", data[:8])[0]
    header, end = json.loads(data[8:8 + size]), len(data) - 8 - size
    entry = {"dtype": "U8", "shape": [0], "data_offsets": [end, end]}
    count = (MAX_HEADER_BYTES - size) // len(json.dumps({"pad.0000000": entry}, separators=(",", ":")))
    header.update((f"pad.{i:07d}", entry) for i in range(count))
    head = json.dumps(header, separators=(",", ":")).encode()
    head += b" " * (-len(head) % 8)
    assert MAX_HEADER_BYTES * 0.9 < len(head) <= MAX_HEADER_BYTES
    (directory / "model.safetensors").write_bytes(struct.pack("<Q", len(head)) + head + data[8 + size:])
    return directory


def _main_thread_in(dump: str, caller: str, innermost: str) -> bool:
    """Whether a faulthandler dump shows a thread with `caller` on its stack and `innermost` at its top."""
    for block in re.split(r"\n(?=(?:Current thread|Thread) 0x)", dump):
        frames = [line for line in block.splitlines() if line.startswith('  File "')]
        if frames and frames[0].endswith(f" in {innermost}") and any(f.endswith(f" in {caller}") for f in frames):
            return True
    return False


def _wait_inside(node: NodeProcess, caller: str, innermost: str, timeout_s: float) -> None:
    """Ask the node for its stacks (SIGUSR1: faulthandler, which answers even inside a native call)
    every 20 ms until the main thread is in `innermost`, called from `caller`."""
    deadline, seen = time.monotonic() + timeout_s, len(node.log())
    while time.monotonic() < deadline and node.proc.poll() is None:
        os.kill(node.proc.pid, signal.SIGUSR1)
        time.sleep(0.02)
        log = node.log()
        if _main_thread_in(log[seen:], caller, innermost):
            return
        seen = len(log)
    pytest.fail(f"the node was never seen in {innermost} under {caller}:\n{node.log()[-3000:]}")


SLOW_PARSES = {  # what the directory holds at its limit: (make it, caller, the Python frame of the native call)
    "tokenizer.json, json parser": (_tokenizer_at_the_limit, "load_tokenizer", "raw_decode"),
    "tokenizer.json, tokenizers parser": (_tokenizer_at_the_limit, "load_tokenizer", "__init__"),
    "safetensors header": (_header_at_the_limit, "safetensors_files", "safetensors_files"),
}


@pytest.mark.parametrize("case", list(SLOW_PARSES))
def test_sigterm_inside_the_longest_native_calls_of_a_configure(ros_env, model_dir, tmp_path, probe, case):
    make, caller, innermost = SLOW_PARSES[case]
    directory = make(model_dir, tmp_path)
    node = _start(ros_env, tmp_path, directory, "node")
    _stamp(node, LOADING)
    _wait_inside(node, caller, innermost, 60)
    sent = time.time()
    node.proc.send_signal(signal.SIGTERM)
    code, seconds, _ = _wait_exit(node, sent, SIGTERM_EXIT_S + 30)
    limit = MAX_HEADER_BYTES if "header" in case else MAX_TEXT_BYTES
    probe.update(limit_mb=round(limit / 2**20, 1), exit_code=code, seconds_after_sigterm=round(seconds, 2))
    assert code == 0 and seconds <= SIGTERM_EXIT_S, node.log()[-3000:]


# ---- a config.json claiming a million-word vocabulary ----
def test_a_million_word_vocabulary_is_refused_naming_it_without_allocating_it(ros_env, model_dir, tmp_path, probe):
    normal = _start(ros_env, tmp_path, model_dir, "normal")
    serving = _stamp(normal, "serving")
    normal.proc.send_signal(signal.SIGINT)
    normal_code, _, normal_peak = _wait_exit(normal, serving, 120)
    huge = _copy(model_dir, tmp_path / "huge")
    config = json.loads((huge / "config.json").read_text())
    config["llm_config"]["vocab_size"] = 1_000_000
    (huge / "config.json").write_text(json.dumps(config))
    node = _start(ros_env, tmp_path, huge, "huge")
    code, _, peak = _wait_exit(node, _stamp(node, LOADING), 120)
    errors = _error_lines(node.log())
    probe.update(normal_peak_rss_mb=round(normal_peak), refused_peak_rss_mb=round(peak), exit_code=code,
                 names_the_field="vocab_size" in errors)
    assert normal_code == 0 and code == 1 and "llm_config.vocab_size 1000000" in errors, node.log()[-3000:]
    assert peak <= normal_peak + RSS_MARGIN_MB, (peak, normal_peak)
