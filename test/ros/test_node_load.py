"""The node under a burst of frames and a large best-effort frame (default QoS)."""
import signal
import time

from live_node import ANSWER_TIMEOUT_S, header, image, scene

from hyperseg_ros import mask_rle
from hyperseg_ros.image_codec import rgb_to_image
from hyperseg_ros.stream import LatestFrameSlot


def test_a_burst_of_100_frames_leaves_no_backlog(start_node, client):
    max_age_ms = 500.0
    node = start_node(score_threshold=0.0, max_frame_age_ms=max_age_ms, diagnostics_period_s=0.2)
    client.wait_for_node(node)
    first, _ = client.first_answer(node, image)
    frames = [image(i) for i in range(first + 1, first + 101)]
    start = time.monotonic()
    for k, msg in enumerate(frames):
        # 500 Hz, far faster than inference; not faster, so that DDS (depth 1) hands the node
        # each frame and the node's own latest-frame slot is what drops them
        while time.monotonic() < start + k * 0.002:
            pass
        client.image_pub.publish(msg)
    last_stamp = frames[-1].header.stamp
    client.spin_until(lambda: any(s.header.stamp == last_stamp for s in client.segmentations),
                      ANSWER_TIMEOUT_S, "the answer to the newest frame", node)
    d = client.diagnostics_where(node, lambda d: d["frames_in_flight"] == "0"
                                 and int(d["frames_processed"]) == len(client.segmentations), "a settled count")

    burst = [s for s in client.segmentations[1:]]
    stamps = [(s.header.stamp.sec, s.header.stamp.nanosec) for s in burst]
    assert stamps == sorted(stamps) and burst[-1].header.stamp == last_stamp  # in order, newest last
    received, processed, dropped = (int(d[k]) for k in ("frames_received", "frames_processed", "frames_dropped"))
    assert received == processed + dropped + int(d["frames_rejected"])
    # DDS (depth 1) already discards frames the executor has not taken; of those the node
    # received, all but the answered ones were dropped by its latest-frame slot
    assert dropped == received - 1 - len(burst)
    assert int(d.get("dropped_superseded", 0)) + int(d.get("dropped_stale", 0)) == dropped
    # no backlog, whatever the speed of the machine: at every diagnostics sample at most the slot's
    # frames waited, one was in inference and one in the hand-over between them
    in_flight = [int(kv.value) for msg in client.diagnostics for status in msg.status for kv in status.values
                 if kv.key == "frames_in_flight"]
    assert in_flight and max(in_flight) <= LatestFrameSlot.CAPACITY + 2, f"frames in flight: {max(in_flight)}"


def test_a_720p_best_effort_frame_gets_through_and_sigterm_stops_cleanly(start_node, client):
    node = start_node(score_threshold=0.0)
    client.wait_for_node(node)
    big = scene(0, height=720, width=1280)
    i, answer = client.first_answer(node, lambda i: rgb_to_image(big, header=header(i)))
    assert (answer.height, answer.width) == (720, 1280)
    assert answer.header == header(i)
    for inst in answer.instances:
        assert mask_rle.decode(inst.mask_rle, 720, 1280).shape == (720, 1280)
    assert node.stop(signal.SIGTERM) == 0


