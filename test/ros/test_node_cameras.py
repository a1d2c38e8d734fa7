"""Several cameras, one node, one model (parameter `cameras`) over real Fast DDS.

Each camera answers its own commands on its own topics, with exactly the masks of a session run in
this process on that camera's frames alone (so no state leaks between cameras); a command or a
reset of one camera leaves the other's answers as they were; the node's own `command` and
`~/reset` reach every camera; a malformed frame counts for its camera only. Frames go out one at a
time over a reliable subscription, each waiting for its answer, so every frame is processed in order.
"""
import numpy as np
import pytest
import torch
from hyperseg_ros.msg import Segmentation, SegmentationCommand
from live_node import ANSWER_TIMEOUT_S, DISCOVERY_TIMEOUT_S, NAMESPACE, header, qos, scene
from sensor_msgs.msg import Image
from std_msgs.msg import String
from std_srvs.srv import Trigger

from hyperseg_ros import mask_rle
from hyperseg_ros.command import Command
from hyperseg_ros.image_codec import rgb_to_image
from hyperseg_ros.model import load_model
from hyperseg_ros.model.session import SegmentationSession

STILL = 10  # a frame of live_node.scene with the disc well inside the view
NODE = f"{NAMESPACE}/hyperseg_perception"


def _truth() -> dict[str, np.ndarray]:
    """The masks of the drawn objects of scene(STILL)."""
    img = scene(STILL)
    return {"the red circle": (img[..., 0] == 220) & (img[..., 1] == 30),
            "the blue square": (img[..., 2] == 220) & (img[..., 0] == 30)}


class CameraEnd:
    """The test's ends of one camera's topics, and a session in this process fed the same frames."""

    def __init__(self, client, name: str, model):
        self.client, self.name = client, name
        node = client.node
        self.image_pub = node.create_publisher(Image, f"{name}/image", qos(True))
        self.text_pub = node.create_publisher(String, f"{name}/command", qos(True))
        self.command_pub = node.create_publisher(SegmentationCommand, f"{name}/segmentation_command", qos(True))
        self.segmentations: list[Segmentation] = []
        node.create_subscription(Segmentation, f"{name}/segmentation", self.segmentations.append, qos(True, 100))
        self.reset_client = node.create_client(Trigger, f"hyperseg_perception/{name}/reset")
        self.session = SegmentationSession(*model, score_threshold=0.0)

    def ready(self) -> bool:
        return (all(p.get_subscription_count() > 0 for p in (self.image_pub, self.text_pub, self.command_pub))
                and self.client.node.count_publishers(f"{NAMESPACE}/{self.name}/segmentation") > 0
                and self.reset_client.service_is_ready())

    def answer(self, node, i: int) -> Segmentation:
        """Send frame i (scene(STILL) stamped header(i)); its answer, checked against the session's."""
        stamp = header(i, frame_id=self.name)
        self.image_pub.publish(rgb_to_image(scene(STILL), header=stamp))
        answer = self.client.spin_until(
            lambda: next((s for s in self.segmentations if s.header == stamp), None), ANSWER_TIMEOUT_S,
            f"camera {self.name}'s answer to frame {i}", node)
        expected = self.session.process(scene(STILL)).instances
        assert [(x.id, x.label, x.class_id) for x in answer.instances] == [(r.id, r.label, r.class_id) for r in expected]
        for got, ref in zip(answer.instances, expected):
            assert got.score == pytest.approx(ref.score, abs=1e-6)
            np.testing.assert_array_equal(mask_rle.decode(got.mask_rle, answer.height, answer.width), ref.mask)
        return answer

    def reset(self, node) -> None:
        future = self.reset_client.call_async(Trigger.Request())
        self.client.spin_until(future.done, ANSWER_TIMEOUT_S, f"camera {self.name}'s reset", node)
        assert future.result().success


def _found(answer, text: str) -> bool:
    """The best instance is the object `text` names, and not the other one."""
    truth = _truth()
    other = next(mask for name, mask in truth.items() if name != text)
    if not answer.instances:
        return False
    mask = mask_rle.decode(answer.instances[0].mask_rle, answer.height, answer.width)
    iou = (mask & truth[text]).sum() / (mask | truth[text]).sum()
    return iou > 0.5 and (mask & other).sum() / (mask | other).sum() < 0.05


def _statuses(client) -> dict[str, dict[str, str]]:
    """The latest /diagnostics, by status name after the node's name (`segmentation`, `camera front`)."""
    if not client.diagnostics:
        return {}
    return {s.name.split(": ", 1)[1]: {kv.key: kv.value for kv in s.values} for s in client.diagnostics[-1].status
            if s.name.startswith(f"{NODE}: ")}


def _wait_statuses(client, node, predicate, what: str) -> dict[str, dict[str, str]]:
    def check():
        statuses = _statuses(client)
        return statuses if {"segmentation", "camera front", "camera wrist"} <= set(statuses) and predicate(statuses) \
            else None
    return client.spin_until(check, ANSWER_TIMEOUT_S, what, node)


def test_two_cameras_one_model_each_with_its_own_commands_state_and_counts(start_node, client, model_dir):
    node = start_node(cameras="[front, wrist]", image_reliability="reliable", score_threshold=0.0,
                      diagnostics_period_s=0.2)
    torch.set_num_threads(1)  # same arithmetic as the node (num_threads 1)
    model = load_model(str(model_dir))
    front, wrist = CameraEnd(client, "front", model), CameraEnd(client, "wrist", model)
    client.spin_until(lambda: front.ready() and wrist.ready() and client.text_pub.get_subscription_count() > 0
                      and client.reset_client.service_is_ready(), DISCOVERY_TIMEOUT_S, "both cameras' topics", node)
    assert client.node.count_subscribers(f"{NAMESPACE}/image") == 0  # no camera on the node's own topics

    # each camera its own command, on its own topics
    front.text_pub.publish(String(data="the red circle"))
    wrist.command_pub.publish(SegmentationCommand(id="wrist-1", text="the blue square"))
    _wait_statuses(client, node, lambda s: s["camera front"]["commands_received"] == "1"
                   and s["camera wrist"]["commands_received"] == "1", "each camera's command counted")
    front.session.set_command(Command(text="the red circle"))
    wrist.session.set_command(Command(text="the blue square"))
    for i in range(3):
        a, b = front.answer(node, i), wrist.answer(node, i)
        assert (a.text, b.text, b.command_id) == ("the red circle", "the blue square", "wrist-1")
        assert a.command_id not in ("", "wrist-1")
    assert _found(a, "the red circle") and _found(b, "the blue square")

    # a new command to front: wrist goes on with its own command and its own temporal state
    front.command_pub.publish(SegmentationCommand(id="front-2", text="the blue square"))
    _wait_statuses(client, node, lambda s: s["camera front"]["commands_received"] == "2", "front's second command")
    front.session.set_command(Command(text="the blue square"))
    for i in range(3, 5):
        a, b = front.answer(node, i), wrist.answer(node, i)
        assert (a.command_id, b.command_id) == ("front-2", "wrist-1")
    assert _found(a, "the blue square") and _found(b, "the blue square")

    # a reset of front: wrist's state carries on (its session is not reset here either)
    front.reset(node)
    front.session.reset()
    for i in range(5, 7):
        front.answer(node, i), wrist.answer(node, i)
    log = node.log()
    assert "temporal state of camera front cleared: reset_requested" in log, log[-3000:]
    assert "of camera wrist cleared: reset_requested" not in log, log[-3000:]

    # the node's own command and ~/reset reach every camera, with one command id
    client.text_pub.publish(String(data="the red circle"))
    _wait_statuses(client, node, lambda s: s["segmentation"]["commands_received"] == "4", "the node's command")
    for end in (front, wrist):
        end.session.set_command(Command(text="the red circle"))
    a, b = front.answer(node, 7), wrist.answer(node, 7)
    assert a.command_id == b.command_id not in ("front-2", "wrist-1") and _found(a, "the red circle")
    assert client.reset(node).success
    for end in (front, wrist):
        end.session.reset()
    front.answer(node, 8), wrist.answer(node, 8)
    client.spin_until(lambda: "temporal state of camera wrist cleared: reset_requested" in node.log(), 30,
                      "wrist's reset in the log", node)

    # a malformed frame of wrist counts for wrist only; every frame is accounted for per camera
    wrist.image_pub.publish(Image(header=header(9, frame_id="wrist"), height=4, width=4, encoding="16UC1", step=8,
                                  data=bytes(32)))
    statuses = _wait_statuses(client, node, lambda s: s["camera wrist"].get("rejected_encoding") == "1"
                              and all(d["frames_in_flight"] == "0" for d in s.values()), "wrist's rejected frame")
    assert "rejected_encoding" not in statuses["camera front"] and statuses["camera front"]["frames_rejected"] == "0"
    for name, sent, answered in (("camera front", 9, front), ("camera wrist", 10, wrist)):
        d = statuses[name]
        received, processed, dropped, rejected = (int(d[k]) for k in (
            "frames_received", "frames_processed", "frames_dropped", "frames_rejected"))
        assert received == sent == processed + dropped + rejected and processed == len(answered.segmentations)
    total = statuses["segmentation"]
    assert (total["frames_received"], total["frames_processed"], total["frames_rejected"]) == ("19", "18", "1")
