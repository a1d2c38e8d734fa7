"""The node's signals and log lines: SIGTERM during start-up, warnings per kind, quiet streams
that change every frame, a matched image publisher that sends nothing, a clean stop while
streaming, and a broken model refused. (The slow probes are in test/reliability/.)"""
import shutil
import signal
import subprocess
import time
from pathlib import Path

from live_node import DISCOVERY_TIMEOUT_S, NodeProcess, header, image
from safetensors.torch import load_file, save_file
from sensor_msgs.msg import Image

from hyperseg_ros.perception_node import WARN_PERIOD_S


def _wait(predicate, timeout_s: float, what: str, node: NodeProcess):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return
        node.assert_alive()
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}:\n{node.log()[-3000:]}")


def _final_counts(log: str) -> dict[str, int]:
    """The counters of the node's last line ("stopped: frames_received=... ...")."""
    line = next(line for line in reversed(log.splitlines()) if "stopped: frames_received=" in line)
    return {k: int(v) for k, v in (item.split("=") for item in line.split("stopped: ")[1].split())}


def test_sigterm_during_start_up_exits_0(ros_env, model_dir, tmp_path):
    node = NodeProcess(ros_env, tmp_path / "node.log", {"model_path": str(model_dir), "device": "cpu"})
    maps = Path(f"/proc/{node.proc.pid}/maps")
    # ROS is initialised and torch is being loaded: the middle of start-up
    _wait(lambda: "libtorch" in maps.read_text(), DISCOVERY_TIMEOUT_S, "torch to be loading", node)
    code = node.stop(signal.SIGTERM)
    log = node.log_path.read_text(errors="replace")
    assert code == 0 and "Traceback" not in log and "[ERROR]" not in log, log[-3000:]


def test_warnings_per_kind_quiet_changes_silent_publishers_and_a_clean_stop(start_node, reliable_client):
    client = reliable_client  # every frame arrives: the counts below are exact
    node = start_node(score_threshold=0.0, diagnostics_period_s=0.2, image_silence_warn_s=1.0,
                      image_reliability="reliable")
    client.wait_for_node(node)

    # matched but silent: our image publisher is matched and has sent nothing yet
    client.diagnostics_where(node, lambda d: float(d.get("seconds_since_image", 0)) >= 1.0
                             and d.get("image_publishers") == "1", "silence reported in diagnostics")
    assert "no image" in client.diagnostics[-1].status[0].message
    _wait(lambda: "matched on" in node.log() and "no image" in node.log(), 10, "the silence warning", node)

    i, _ = client.first_answer(node, image)
    assert "no image" not in client.diagnostics[-1].status[0].message or client.spin_until(
        lambda: "no image" not in client.diagnostics[-1].status[0].message, 10, "the silence cleared", node)

    # three different rejections in a row: three warnings (one per kind), not one
    bad = [Image(header=header(90), height=4, width=4, encoding="16UC1", step=8, data=bytes(32)),
           Image(header=header(91), height=4, width=4, encoding="rgb8", step=12, data=bytes(7)),
           Image(header=header(92), height=0, width=0, encoding="rgb8", step=0, data=b"")]
    for msg in bad:
        client.image_pub.publish(msg)
        client.executor.spin_once(timeout_sec=0.05)
    client.diagnostics_where(node, lambda d: d.get("frames_rejected") == "3", "3 rejected frames")
    warned = [line for line in node.log().splitlines() if "image rejected" in line]
    assert {r for r in ("encoding", "size_mismatch", "empty") if any(f"({r})" in w for w in warned)} == {
        "encoding", "size_mismatch", "empty"}, warned

    # a stream whose size changes with every answered frame: state is cleared each time, but the note
    # is logged at most once per throttle period (WARN_PERIOD_S), whatever the speed of inference
    sizes, sent = [], [i]  # sent: the last frame index published (an earlier one may still be answered)
    started = time.monotonic()
    for _ in range(8):  # each answer has the other size; re-sent until answered (a reliable frame can wait)
        height = 90 if not sizes or sizes[-1] == 120 else 120

        def frame(n, h=height):
            sent[0] = max(sent[0], n)
            return image(n, height=h, width=h * 4 // 3)

        _, answer = client.first_answer(node, frame, start=sent[0] + 1)
        sizes.append(answer.height)
    elapsed = time.monotonic() - started
    changes = sum(a != b for a, b in zip(sizes, sizes[1:]))
    lines = node.log().count("temporal state cleared: image_size_changed")
    assert changes == 7 and 1 <= lines <= 1 + elapsed / WARN_PERIOD_S, (changes, lines, elapsed)

    # stopped while frames stream in: exit 0, no ERROR, every frame accounted for
    for k in range(30):
        client.image_pub.publish(image(i + 20 + k))
        client.executor.spin_once(timeout_sec=0.01)
    assert node.stop(signal.SIGINT) == 0
    log = node.log_path.read_text(errors="replace")
    assert "[ERROR]" not in log and "Traceback" not in log, log[-3000:]
    counts = _final_counts(log)
    assert counts["frames_received"] == counts["frames_processed"] + counts["frames_dropped"] + counts["frames_rejected"]
    assert "dropped_error" not in counts


def test_a_model_with_a_missing_weight_is_refused(ros_env, model_dir, tmp_path):
    broken = Path(shutil.copytree(model_dir, tmp_path / "broken", ignore=shutil.ignore_patterns("*.png", "*.md")))
    state = load_file(broken / "model.safetensors")
    del state["predictor.pixel_decoder.mask_projection.weight"]
    save_file(state, broken / "model.safetensors", metadata={"format": "pt"})
    node = NodeProcess(ros_env, tmp_path / "node.log", {"model_path": str(broken), "device": "cpu"})
    try:
        node.proc.wait(timeout=DISCOVERY_TIMEOUT_S)
    except subprocess.TimeoutExpired:  # it served the broken model: stop it, then fail
        node.stop()
        raise AssertionError(f"the node served a broken model:\n{node.log_path.read_text()[-3000:]}") from None
    log = node.log()
    assert node.proc.returncode != 0, log[-3000:]
    assert f"{broken / 'model.safetensors'}: missing weights predictor.pixel_decoder.mask_projection.weight" in log
    assert "serving" not in log and "Traceback" not in log, log[-3000:]
