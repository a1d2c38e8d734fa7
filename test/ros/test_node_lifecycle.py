"""The node as a managed (lifecycle) node, driven over its real lifecycle services.

unconfigured -> configure (model loaded) -> inactive (no answers) -> activate (answers) ->
deactivate (no answers) -> cleanup (model freed: RSS drops) -> configure + activate (answers again).
"""
import numpy as np
from live_node import ANSWER_TIMEOUT_S, header, image, scene
from std_msgs.msg import String

from hyperseg_ros import mask_rle

QUIET_FRAMES = 15  # frames sent while the node must not answer (~3 s of spinning)


def _circle_iou(answer, i) -> float:
    """Best IoU of an instance labelled `circle` with the red disc of frame i (0 when none is)."""
    img = scene(i)
    disc = (img[..., 0] == 220) & (img[..., 1] == 30)
    ious = [0.0]
    for inst in answer.instances:
        if inst.label == "circle":
            mask = mask_rle.decode(inst.mask_rle, answer.height, answer.width)
            ious.append(float((mask & disc).sum() / (mask | disc).sum()))
    return max(ious)


def _assert_silent(client, node, start: int) -> int:
    """Publish QUIET_FRAMES frames from index `start`, spinning between them; none is answered."""
    before = len(client.segmentations)
    for i in range(start, start + QUIET_FRAMES):
        client.image_pub.publish(image(i))
        client.executor.spin_once(timeout_sec=0.2)
        node.assert_alive()
    assert len(client.segmentations) == before, "a node that is not active answered a frame"
    return start + QUIET_FRAMES


def _assert_serves(client, node, start: int) -> int:
    """The node answers a frame from index `start` on, with the default vocabulary's circle on the disc."""
    i, answer = client.first_answer(node, image, start=start)
    assert answer.header == header(i) and answer.command_id == ""
    assert _circle_iou(answer, i) > 0.5, [(inst.label, inst.score) for inst in answer.instances]
    return i + 1


def test_transitions_over_the_lifecycle_services(start_node, client, model_dir):
    node = start_node(autostart=False, diagnostics_period_s=0.2, score_threshold=0.0)
    assert client.lifecycle_state(node) == "unconfigured"
    assert "unconfigured, waiting for the lifecycle transitions: ros2 lifecycle set /robot/hyperseg_perception " \
        "configure" in node.log()  # says so, instead of nothing until configured
    client.diagnostics_where(node, lambda d: d["lifecycle_state"] == "unconfigured", "unconfigured diagnostics")

    assert client.change_state(node, "configure") and client.lifecycle_state(node) == "inactive"
    client.diagnostics_where(node, lambda d: d["lifecycle_state"] == "inactive", "inactive diagnostics")
    i = _assert_silent(client, node, 0)

    assert client.change_state(node, "activate") and client.lifecycle_state(node) == "active"
    i = _assert_serves(client, node, i)
    d = client.diagnostics_where(node, lambda d: d["lifecycle_state"] == "active" and int(d["frames_processed"]) > 0,
                                 "active diagnostics")
    assert d["model"] and d["device"] == "cpu"

    assert client.change_state(node, "deactivate") and client.lifecycle_state(node) == "inactive"
    i = _assert_silent(client, node, i)
    rss_served = node.rss_mb()

    assert client.change_state(node, "cleanup") and client.lifecycle_state(node) == "unconfigured"
    rss_cleaned = node.rss_mb()
    d = client.diagnostics_where(node, lambda d: d["lifecycle_state"] == "unconfigured", "diagnostics after cleanup")
    assert d["model"] == ""
    # deactivate already returned the inference buffers; cleanup returns the weights (torch's import stays)
    weights_mb = (model_dir / "model.safetensors").stat().st_size / 2**20
    assert rss_served - rss_cleaned > 0.8 * weights_mb, (rss_served, rss_cleaned, weights_mb)

    assert client.change_state(node, "configure") and client.change_state(node, "activate")
    i = _assert_serves(client, node, i)
    # parameters are read at configure: refused while configured, taken by the next configure
    assert not client.set_parameter(node, "categories", ["circle"])
    assert client.change_state(node, "deactivate") and client.change_state(node, "cleanup")
    assert client.set_parameter(node, "categories", ["circle"])
    assert client.change_state(node, "configure") and client.change_state(node, "activate")
    i, answer = client.first_answer(node, image, start=i + QUIET_FRAMES)
    assert list(answer.categories) == ["circle"] and _circle_iou(answer, i) > 0.5
    # an impossible transition is refused and changes nothing
    assert not client.change_state(node, "configure") and client.lifecycle_state(node) == "active"
    assert np.isfinite(float(client.latest_diagnostics()["process_rss_mb"]))
    # a command accepted while inactive is logged with what happens to it
    assert client.change_state(node, "deactivate")
    client.text_pub.publish(String(data="the red circle"))
    client.spin_until(lambda: "'the red circle' (inactive: answered once the node is activated)" in node.log(),
                      ANSWER_TIMEOUT_S, "the log line of the accepted command", node)
