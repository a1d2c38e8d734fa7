"""The node under malformed images and commands, and with compressed input (default QoS)."""
from hyperseg_ros.msg import SegmentationCommand
from live_node import DISCOVERY_TIMEOUT_S, header, image, qos, scene
from sensor_msgs.msg import CompressedImage, Image, RegionOfInterest
from std_msgs.msg import String

from hyperseg_ros.image_codec import rgb_to_compressed


def test_bad_images_and_commands_are_rejected_and_counted_while_serving(start_node, client):
    node = start_node(score_threshold=0.0, diagnostics_period_s=0.2)
    client.wait_for_node(node)
    i, _ = client.first_answer(node, image)
    ok = client.segmentations[-1]

    bad_images = {
        "encoding": Image(header=header(50), height=4, width=4, encoding="16UC1", step=8, data=bytes(32)),
        "size_mismatch": Image(header=header(51), height=4, width=4, encoding="rgb8", step=12, data=bytes(7)),
        "empty": Image(header=header(52), height=0, width=0, encoding="rgb8", step=0, data=b""),
        "too_large": Image(header=header(53), height=5000, width=5000, encoding="mono8", step=5000, data=bytes(10)),
    }
    for reason, msg in bad_images.items():  # one at a time: the subscription keeps only the last
        client.image_pub.publish(msg)
        client.diagnostics_where(node, lambda d, r=reason: d.get(f"rejected_{r}") == "1", f"rejected_{reason}")

    client.text_pub.publish(String(data="   "))  # empty
    client.command_pub.publish(SegmentationCommand(task="dance", text="the red circle"))  # unknown task
    client.command_pub.publish(SegmentationCommand(  # the frames are 160x120: outside the image
        task="visual_prompt", boxes=[RegionOfInterest(x_offset=150, y_offset=10, width=50, height=20)]))
    client.command_pub.publish(SegmentationCommand(text="x" * 5000))  # oversized
    client.diagnostics_where(node, lambda d: d["commands_rejected"] == "4", "4 rejected commands")

    # still serving, still answering the command that was active before
    _, answer = client.first_answer(node, image, start=i + 1)
    assert answer.command_id == ok.command_id and (answer.height, answer.width) == (120, 160)

    d = client.diagnostics_where(node, lambda d: d["frames_in_flight"] == "0"
                                 and int(d["frames_processed"]) == len(client.segmentations), "a settled count")
    received, processed, dropped, rejected = (int(d[k]) for k in (
        "frames_received", "frames_processed", "frames_dropped", "frames_rejected"))
    assert received == processed + dropped + rejected and rejected == 4
    assert d["commands_received"] == "4"


def test_compressed_input(start_node, client):
    node = start_node(score_threshold=0.0, compressed_input=True)
    pub = client.node.create_publisher(CompressedImage, "image/compressed", qos(False, depth=1))
    client.spin_until(lambda: pub.get_subscription_count() > 0, DISCOVERY_TIMEOUT_S, "the image/compressed subscription", node)
    client.image_pub = pub  # first_answer publishes through it
    i, answer = client.first_answer(node, lambda i: rgb_to_compressed(scene(i), header=header(i), fmt="png"))
    assert (answer.height, answer.width) == (120, 160) and answer.header == header(i)
    assert client.image_pub.topic_name.endswith("image/compressed")
