"""`make bench` prints a table first: per task the model's ms (full, per-frame, at n=4), then the node's row."""
import importlib.util
from pathlib import Path

spec = importlib.util.spec_from_file_location("bench", Path(__file__).resolve().parents[2] / "scripts" / "bench.py")
bench = importlib.util.module_from_spec(spec)
spec.loader.exec_module(bench)

MODEL = {"model": "embedded", "device": "cpu", "dtype": "float32", "image": "640x480",
         "median_ms": {"full_pass": {"referring": {"wall": 100.0}, "visual_prompt": {"wall": 60.0}},
                       "per_frame_pass": {"referring": {"wall": 40.0}, "visual_prompt": {"wall": 20.0}}}}
NODE = {"image": "640x480 rgb8", "publish_rate_hz": 30.0, "repeats": 3,
        "median": {"processed_fps": 9.5, "node_latency_p50_ms": 80.25, "node_latency_p99_ms": 140.0,
                   "end_to_end_p50_ms": 85.0, "end_to_end_p99_ms": 150.0,
                   "stages_mean_ms": {"wait": 20.0, "model_predictor": 50.0, "decode": 1.0}}}


def _rows(node):
    lines = bench.table(MODEL, node)
    return [line for line in lines[:lines.index("", 2)] if line.startswith("| ") and not line.startswith("| task")]


def test_the_node_measured_per_task_shares_the_task_rows():
    node = dict(NODE, tasks=["referring", "visual_prompt"], median={
        "referring": NODE["median"], "visual_prompt": dict(NODE["median"], processed_fps=12.0)})
    assert _rows(node) == ["| referring | 100.0 | 40.0 | 55.0 | 18.2 | 9.5 | 80.2 | 140.0 | 85.0 | 150.0 |",  # (100+3*40)/4
                           "| visual_prompt | 60.0 | 20.0 | 30.0 | 33.3 | 12.0 | 80.2 | 140.0 | 85.0 | 150.0 |"]


def test_the_nodes_default_task_gets_a_row_of_its_own():
    assert _rows(NODE) == ["| referring | 100.0 | 40.0 | 55.0 | 18.2 | | | | | |",
                           "| visual_prompt | 60.0 | 20.0 | 30.0 | 33.3 | | | | | |",
                           "| node: its default task | | | | | 9.5 | 80.2 | 140.0 | 85.0 | 150.0 |"]


def test_the_stage_table_has_a_column_per_stage_in_a_frames_order():
    node = dict(NODE, tasks=["default", "referring"], median={
        "default": NODE["median"], "referring": dict(NODE["median"], stages_mean_ms={"wait": 5.0, "publish": 0.5})})
    lines = bench.table(MODEL, node)
    stages = lines[lines.index("", 2) + 1:]
    assert stages[0] == "| node, mean ms per frame | wait | decode | model: predictor | publish |"
    assert stages[2:] == ["| its default task | 20.0 | 1.0 | 50.0 | - |", "| referring | 5.0 | - | - | 0.5 |"]


def test_compared_node_variants_get_a_row_each():
    node = dict(NODE, median={f"llm_every_n_frames={n}": NODE["median"] for n in (1, 4)})
    assert [r.split(" |")[0] for r in _rows(node)[2:]] == ["| node: llm_every_n_frames=1", "| node: llm_every_n_frames=4"]
    node = dict(NODE, tasks=["referring"], median={"llm_every_n_frames=1": {"referring": NODE["median"]}})
    assert _rows(node)[2].startswith("| node: referring (llm_every_n_frames=1) | | | | | 9.5 |")


def test_the_camera_table_has_a_row_per_configuration_with_the_ratios_of_one_node():
    cam = {"processed_fps": 5.0, "latency_p50_ms": 190.0, "latency_p99_ms": 280.0}
    report = {"rate_hz_per_camera": 30.0, "ratios": {"2 cameras": {"total_fps_over_one_camera": 1.03,
                                                                   "rss_over_separate_nodes": 0.57}},
              "median": {"1 cameras, one node": {"cameras": {"cam0": dict(cam, processed_fps=10.0)},
                                                 "total_fps": 10.0, "rss_MiB": 585.0},
                         "2 cameras, one node": {"cameras": {"cam0": cam, "cam1": dict(cam, latency_p99_ms=300.0)},
                                                 "total_fps": 10.3, "rss_MiB": 660.0},
                         "2 cameras, separate nodes": {"cameras": {"cam0": cam, "cam1": cam},
                                                       "total_fps": 10.0, "rss_MiB": 1167.0}}}
    assert bench.camera_table(report)[2:] == [
        "| 1 cameras, one node | 10.0 | 10.0 | 190 / 280 | 585 | - | - |",
        "| 2 cameras, one node | 10.3 | 5.0, 5.0 | 190 / 300 | 660 | 1.03 | 0.57 |",
        "| 2 cameras, separate nodes | 10.0 | 5.0, 5.0 | 190 / 280 | 1167 | - | - |"]


def test_the_speech_table_has_a_row_per_split_with_its_intervals():
    report = [{"split": "val", "voices": ["a", "b", "c", "d"], "speeds": [150, 175], "n": 3200, "exact": 0.915,
               "exact_interval": [0.905, 0.924], "wer": 0.017, "accepted": 0.88, "accepted_wrong": 0.043,
               "accepted_wrong_interval": [0.037, 0.051], "end_to_command_ms_p50": 286.4,
               "end_to_command_ms_p90": 310.0}]
    assert bench.speech_table(report)[2:] == [
        "| val (4 voices x 2 speeds) | 3200 | 91.5% [90.5, 92.4] | 1.7% | 88.0% | 4.3% [3.7, 5.1] | 286 / 310 |"]
