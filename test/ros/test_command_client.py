"""`hyperseg_command` against a live node fed camera frames, and with no node at all."""
import subprocess
import sys

from live_node import DISCOVERY_TIMEOUT_S, NAMESPACE, ROOT, image, scene

from hyperseg_ros.command_client import describe_answer

TOOL = [sys.executable, "-P", "-m", "hyperseg_ros.command_client"]


def _send_while_streaming(client, node, ros_env, args: list[str], start: int):
    """Run hyperseg_command --wait while the client streams frames from index `start` (the node
    answers a command on its next frame). -> (completed process, next frame index)."""
    proc = subprocess.Popen([*TOOL, *args, "--namespace", NAMESPACE, "--wait", "--timeout", str(DISCOVERY_TIMEOUT_S),
                             "--answer-timeout", "120"], env=ros_env, cwd=ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    i = start
    try:
        while proc.poll() is None:
            client.image_pub.publish(image(i))
            client.executor.spin_once(timeout_sec=0.2)
            node.assert_alive()
            i += 1
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err), i


def _printed_answer(client, stdout: str) -> list[str]:
    """The answer lines the tool printed, checked against the Segmentation the client received."""
    lines = stdout.splitlines()
    start = next(k for k, line in enumerate(lines) if line.startswith("answer to "))
    command_id = lines[start].split()[2]
    seg = next(s for s in client.segmentations if s.command_id == command_id)
    assert lines[start:] == describe_answer(seg)
    return lines[start:]


def test_a_sentence_and_a_box_are_heard_and_answered(start_node, client, ros_env):
    node = start_node(score_threshold=0.0)  # every answer has its best instance, whatever the model's confidence
    client.wait_for_node(node)
    run, i = _send_while_streaming(client, node, ros_env, ["the red circle"], 0)
    assert run.returncode == 0, run.stderr
    assert run.stdout.startswith("sent 'the red circle' on /robot/command")
    answer = _printed_answer(client, run.stdout)
    assert "(referring)" in answer[0] and answer[1].lstrip().startswith("#1 'the red circle' score ")

    disc = scene(i)[..., 0] == 220  # a box around the red disc of the next frames
    ys, xs = disc.nonzero()
    box = [str(v) for v in (xs.min() - 2, ys.min() - 2, xs.max() - xs.min() + 8, ys.max() - ys.min() + 4)]
    run, i = _send_while_streaming(client, node, ros_env, ["--box", *box, "--id", "box-1"], i)
    assert run.returncode == 0, run.stderr
    assert run.stdout.startswith("sent command box-1 (visual_prompt) on /robot/segmentation_command")
    answer = _printed_answer(client, run.stdout)
    assert answer[0].startswith("answer to box-1 (visual_prompt)") and len(answer) >= 2


def test_with_no_node_it_fails_with_one_line_within_its_timeout(ros_env):
    run = subprocess.run([*TOOL, "the red circle", "--timeout", "2"], env=ros_env, cwd=ROOT, capture_output=True,
                         text=True, timeout=120)
    assert run.returncode == 1 and run.stdout == ""
    assert run.stderr.startswith("hyperseg_command: no node subscribes to /command within 2 s")
    assert len(run.stderr.strip().splitlines()) == 1, run.stderr
