"""overlay rendering, /diagnostics content and the Fast DDS profile switch."""
import xml.etree.ElementTree as ET

import numpy as np
from diagnostic_msgs.msg import DiagnosticStatus

from hyperseg_ros import fastdds
from hyperseg_ros.diagnostics import diagnostic_array
from hyperseg_ros.model.session import Instance
from hyperseg_ros.overlay import colour, render_overlay
from hyperseg_ros.stream import StreamStats


def test_overlay_tints_masks_in_their_ids_colour_and_leaves_the_rest():
    image = np.full((100, 120, 3), 128, np.uint8)
    mask = np.zeros((100, 120), bool)
    mask[40:90, 50:110] = True
    out = render_overlay(image, [Instance(3, "red circle", 0, 0.87, mask, (50, 40, 60, 50))])
    assert out.shape == image.shape and out.dtype == np.uint8
    inside = out[60:80, 60:100].reshape(-1, 3).astype(int)
    expected = (np.array(colour(3)) * 0.5 + 128 * 0.5).astype(int)
    assert np.abs(inside - expected).max() <= 1
    np.testing.assert_array_equal(out[:20, :40], image[:20, :40])  # far from mask and label
    np.testing.assert_array_equal(image, 128)  # the input is not drawn on


def test_colours_are_stable_and_distinct_per_id():
    colours = [colour(i) for i in range(1, 21)]
    assert colours == [colour(i) for i in range(1, 21)]
    assert len(set(colours)) == 20


def test_diagnostics_account_for_every_frame():
    stats = StreamStats()
    for _ in range(10):
        stats.count_received()
    for _ in range(6):
        stats.count_processed(20.0)
    stats.count_dropped("superseded", 2)
    stats.count_rejected("encoding")
    stats.count_command(rejected_reason="invalid")
    (status,) = diagnostic_array(_time(), stats.snapshot(), "node: segmentation", "cpu", "tiny", "cpu").status
    values = {kv.key: kv.value for kv in status.values}
    assert values["frames_received"] == "10"
    assert int(values["frames_processed"]) + int(values["frames_dropped"]) + int(values["frames_rejected"]) \
        + int(values["frames_in_flight"]) == 10
    assert values["frames_in_flight"] == "1"
    assert (values["dropped_superseded"], values["rejected_encoding"], values["commands_rejected"]) == ("2", "1", "1")
    assert float(values["latency_p50_ms"]) == 20.0 and float(values["process_rss_mb"]) > 0
    assert (values["model"], values["device"]) == ("tiny", "cpu")
    assert status.level == DiagnosticStatus.WARN  # input was rejected
    assert values["lifecycle_state"] == "active"


def test_diagnostics_report_the_lifecycle_state():
    stats = StreamStats()
    stats.count_received()
    stats.count_processed(5.0)
    (active,) = diagnostic_array(_time(), stats.snapshot(), "n", "cpu", "tiny", "cpu").status
    assert active.level == DiagnosticStatus.OK
    (inactive,) = diagnostic_array(_time(), stats.snapshot(), "n", "", "", "", lifecycle_state="inactive").status
    assert inactive.level == DiagnosticStatus.WARN and inactive.message.startswith("inactive")
    assert {kv.key: kv.value for kv in inactive.values}["lifecycle_state"] == "inactive"


def _time():
    from builtin_interfaces.msg import Time

    return Time(sec=1)


def test_shm_profile_is_used_unless_the_user_chose_one():
    env = {}
    path = fastdds.use_shm_profile(env)
    assert env[fastdds.PROFILE_ENV] == path
    root = ET.parse(path).getroot()
    sizes = [e.text for e in root.iter() if e.tag.endswith("segment_size")]
    assert sizes == [str(32 * 2**20)]
    assert fastdds.use_shm_profile({fastdds.PROFILE_ENV: "/mine.xml"}) == "/mine.xml"


def test_diagnostics_say_where_a_frames_time_goes():
    stats = StreamStats(stage_window=2)
    stats.count_processed(100.0, {"wait": 50.0, "model_predictor": 40.0, "model_llm": 10.0})  # out of the window
    stats.count_processed(30.0, {"wait": 10.0, "model_predictor": 20.0})
    stats.count_processed(50.0, {"wait": 20.0, "model_predictor": 20.0, "model_llm": 10.0})
    assert stats.snapshot().stage_mean_ms == {"wait": 15.0, "model_predictor": 20.0, "model_llm": 5.0}
    (status,) = diagnostic_array(_time(), stats.snapshot(), "n", "cpu", "tiny", "cpu").status
    values = {kv.key: kv.value for kv in status.values}
    assert (values["stage_wait_mean_ms"], values["stage_model_llm_mean_ms"]) == ("15.000", "5.000")
