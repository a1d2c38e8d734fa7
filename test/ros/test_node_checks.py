"""The node process and what it is told: parameters checked against the table (named when refused,
misspelt keys warned about), log lines a caller cannot forge, command acceptance throttled and lost
commands counted, silence measured from activation, a second node of the same name warned about."""
import subprocess
import time

import pytest
from hyperseg_ros.msg import SegmentationCommand
from live_node import DISCOVERY_TIMEOUT_S, ROOT, Client, NodeProcess, image
from std_msgs.msg import String

from hyperseg_ros.parameters import CORES
from hyperseg_ros.perception_node import WARN_PERIOD_S


def _exit_code(node: NodeProcess) -> int:
    try:
        return node.proc.wait(timeout=DISCOVERY_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        node.stop()
        raise AssertionError(f"the node kept running:\n{node.log()[-3000:]}") from None


@pytest.mark.parametrize("name, value", [("image_reliability", "Reliable"), ("max_frame_age_ms", ".nan"),
                                         ("num_threads", "4096"), ("max_instances", "0"),
                                         ("diagnostics_period_s", "0.0"), ("device", "cuda:7")])
def test_a_bad_parameter_stops_start_up_naming_it(ros_env, model_dir, tmp_path, name, value):
    node = NodeProcess(ros_env, tmp_path / "node.log", {"model_path": str(model_dir), name: value})
    assert _exit_code(node) == 1, node.log()[-3000:]
    log = node.log()
    assert f"parameter {name}" in log and "[ERROR]" in log and "Traceback" not in log, log[-3000:]
    assert "loaded in" not in log, "the model was loaded before the parameter was checked"


def test_misspelt_keys_and_dropped_overrides_are_warned_about_and_values_set_while_unconfigured_are_checked(
        ros_env, model_dir, tmp_path, client):
    params_file = tmp_path / "params.yaml"  # the shipped file with one key misspelt
    params_file.write_text((ROOT / "config" / "perception.yaml").read_text() + "    categries: [circle]\n")
    node = NodeProcess(ros_env, tmp_path / "node.log", {"model_path": str(model_dir), "autostart": False,
                                                        "max_instance": 3, "max_instances": "foo"},
                       params_file=params_file)
    try:
        assert client.lifecycle_state(node) == "unconfigured"
        assert "unknown parameter(s) 'categries', 'max_instance' ignored" in node.log(), node.log()[-3000:]
        assert "-p max_instances:=foo was not applied" in node.log(), node.log()[-3000:]
        assert not client.set_parameter(node, "num_threads", 4096)
        assert not client.set_parameter(node, "image_reliability", "Reliable")
        assert client.set_parameter(node, "num_threads", CORES) and client.change_state(node, "configure")
    finally:
        assert node.stop() == 0


FORGED = "x\n[ERROR] [1.0] [robot.x]: FORGED \x1b[2J\x1b]0;t\x07"  # within max_command_id_chars


def test_caller_text_cannot_forge_log_lines_and_acceptance_is_throttled(start_node, client):
    node = start_node(diagnostics_period_s=0.2)
    client.wait_for_node(node)
    # the forged id first and alone: acceptance lines are throttled, so of two commands that arrive together
    # (on two topics, in either order) only the first is logged
    client.command_pub.publish(SegmentationCommand(id=FORGED, text="the red circle"))
    client.diagnostics_where(node, lambda d: d["commands_received"] == "1", "the forged command")
    client.text_pub.publish(String(data="the red \x1b[31mcircle"))
    client.diagnostics_where(node, lambda d: d["commands_received"] == "2", "2 commands")
    log = node.log()
    forged = [line for line in log.splitlines() if "FORGED" in line]
    assert len(forged) == 1 and forged[0].startswith("[INFO]") and "\\n[ERROR]" in forged[0], log[-3000:]
    assert "\x1b" not in log, log[-3000:]

    # a burst from publishers already seen: every command is either received or counted as lost
    started = time.monotonic()
    for k in range(500):
        client.text_pub.publish(String(data=f"the red circle {k}"))
    d = client.diagnostics_where(node, lambda d: int(d["commands_received"]) + int(d["commands_lost"]) >= 502,
                                 "every command received or counted as lost")
    elapsed = time.monotonic() - started
    assert int(d["commands_received"]) + int(d["commands_lost"]) == 502, d
    accepted = sum("command '" in line and "[INFO]" in line for line in node.log().splitlines())
    assert 1 <= accepted <= 2 + elapsed / WARN_PERIOD_S, (accepted, elapsed)


def test_silence_is_counted_from_activation(start_node, reliable_client):
    client = reliable_client
    node = start_node(autostart=False, diagnostics_period_s=0.2, image_silence_warn_s=2.0,
                      image_reliability="reliable", score_threshold=0.0)
    assert client.change_state(node, "configure") and client.change_state(node, "activate")
    i, _ = client.first_answer(node, image)
    assert client.change_state(node, "deactivate")
    seen = len(client.diagnostics)  # inactive for 20 diagnostics periods (4 s), twice the warning's delay
    client.spin_until(lambda: len(client.diagnostics) >= seen + 20, 60, "20 diagnostics while inactive", node)
    before = node.log().count("no image for")
    assert client.change_state(node, "activate")
    client.first_answer(node, image, start=i + 1)
    assert node.log().count("no image for") == before, node.log()[-3000:]


def test_a_second_node_of_the_same_name_is_warned_about(start_node, client):
    first, second = start_node(), start_node()
    client.wait_for_node(first)
    for node in (first, second):
        client.spin_until(lambda n=node: "another node named /robot/hyperseg_perception" in n.log(),
                          DISCOVERY_TIMEOUT_S, "the same-name warning", node)


def test_a_client_of_another_name_is_no_twin(start_node, ros_env):
    node = start_node(diagnostics_period_s=0.2)
    other = Client(namespace="/other")
    try:
        other.spin_until(lambda: other.node.count_publishers("/diagnostics") > 0, DISCOVERY_TIMEOUT_S,
                         "the node's diagnostics", node)
        seen = len(other.diagnostics)
        other.spin_until(lambda: len(other.diagnostics) >= seen + 5, 60, "5 diagnostics", node)
    finally:
        other.close()
    assert "another node named" not in node.log()
