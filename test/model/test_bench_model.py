"""scripts/bench_model.py runs end to end (here the tiny size on CPU, in bfloat16) and prints its JSON."""
import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
LANGUAGE_STAGES = {"vanilla_encoder", "perceiver", "llm"}


def test_bench_model_prints_full_and_per_frame_stages():
    run = subprocess.run([sys.executable, "-P", str(ROOT / "scripts" / "bench_model.py"), "--size", "tiny",
                          "--dtype", "bfloat16", "--frames", "3", "--warmup", "1", "--threads", "1"],
                         capture_output=True, text=True, timeout=600, cwd=ROOT)
    assert run.returncode == 0, run.stderr[-2000:]
    report = json.loads(run.stdout)
    assert report["model"].startswith("tiny") and report["dtype"] == "bfloat16" and report["device"] == "cpu"
    assert report["peak_rss_MiB"] > 0 and report["params_M"] > 0
    for task in ("referring", "open_vocabulary", "visual_prompt"):
        full = report["median_ms"]["full_pass"][task]
        per_frame = report["median_ms"]["per_frame_pass"][task]
        assert full["frames"] == per_frame["frames"] == 2
        assert LANGUAGE_STAGES <= set(full) and not LANGUAGE_STAGES & set(per_frame)
        for stages in (full, per_frame):
            assert {"pyramid_encoder", "predictor", "postprocess", "total", "wall"} <= set(stages)
            assert all(v >= 0 for v in stages.values())
