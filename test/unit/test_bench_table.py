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
        "median": {"processed_fps": 9.5, "node_latency_p50_ms": 80.25, "node_latency_p99_ms": 140.0}}


def _rows(node):
    return [line for line in bench.table(MODEL, node) if line.startswith("| ") and not line.startswith("| task")]


def test_the_node_measured_per_task_shares_the_task_rows():
    node = dict(NODE, tasks=["referring", "visual_prompt"], median={
        "referring": NODE["median"], "visual_prompt": dict(NODE["median"], processed_fps=12.0)})
    assert _rows(node) == ["| referring | 100.0 | 40.0 | 55.0 | 18.2 | 9.5 | 80.2 | 140.0 |",  # (100 + 3 * 40) / 4
                           "| visual_prompt | 60.0 | 20.0 | 30.0 | 33.3 | 12.0 | 80.2 | 140.0 |"]


def test_the_nodes_default_task_gets_a_row_of_its_own():
    assert _rows(NODE) == ["| referring | 100.0 | 40.0 | 55.0 | 18.2 | | | |",
                           "| visual_prompt | 60.0 | 20.0 | 30.0 | 33.3 | | | |",
                           "| node: its default task | | | | | 9.5 | 80.2 | 140.0 |"]


def test_compared_node_variants_get_a_row_each():
    node = dict(NODE, median={f"llm_every_n_frames={n}": NODE["median"] for n in (1, 4)})
    assert [r.split(" |")[0] for r in _rows(node)[2:]] == ["| node: llm_every_n_frames=1", "| node: llm_every_n_frames=4"]
    node = dict(NODE, tasks=["referring"], median={"llm_every_n_frames=1": {"referring": NODE["median"]}})
    assert _rows(node)[2].startswith("| node: referring (llm_every_n_frames=1) | | | | | 9.5 |")
