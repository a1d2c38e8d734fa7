"""Real cameras' encodings over DDS: the node answers a frame in each with the red disc labelled
`circle` (the right colours reached the model), and refuses a depth image, saying so."""
import sys
from pathlib import Path

from live_node import header
from sensor_msgs.msg import Image
from test_node_lifecycle import _circle_iou

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "unit"))
from live_node import scene  # noqa: E402
from test_camera_encodings import COLOUR, MONO, encode  # noqa: E402


def test_every_camera_encoding_is_served_with_the_right_colours(start_node, client):
    node = start_node(score_threshold=0.0, diagnostics_period_s=0.2)
    client.wait_for_node(node)
    start = 0
    for encoding in COLOUR:
        def frame(i, enc=encoding):
            msg = encode(scene(i), enc)
            msg.header = header(i)
            return msg

        i, answer = client.first_answer(node, frame, start=start)
        assert (answer.height, answer.width) == (120, 160), encoding
        assert _circle_iou(answer, i) > 0.5, (encoding, [(x.label, x.score) for x in answer.instances])
        start = i + 1
    for encoding in MONO:  # grey: served at the right size (no colour to find the red disc by)
        i, answer = client.first_answer(node, lambda i, enc=encoding: _stamped(encode(scene(i), enc), i), start=start)
        assert (answer.height, answer.width) == (120, 160), encoding
        start = i + 1
    client.image_pub.publish(Image(header=header(start), height=4, width=4, encoding="16UC1", step=8, data=bytes(32)))
    client.diagnostics_where(node, lambda d: d.get("rejected_encoding") == "1", "the depth image rejected")
    client.spin_until(lambda: "is a depth or float image" in node.log(), 30, "the reason in the log", node)


def _stamped(msg, i):
    msg.header = header(i)
    return msg
