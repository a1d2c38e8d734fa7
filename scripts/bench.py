#!/usr/bin/env python3
"""`make bench`: a table first, then the JSON of scripts/bench_model.py and scripts/bench_node.py.

Per task the model's median ms per frame (through SegmentationSession, no ROS): `full` with the
language pass, `per-frame` without it, and `at n=4` the mean of one full and three per-frame
frames (llm_every_n_frames 4, the default) with its frames/s. Then the node as a robot sees it
(640x480 rgb8 at 30 Hz over Fast DDS, each task's command sent in turn, after the node's default task: open
vocabulary over the model's default categories): frames answered per second (latest frame wins: the others are
dropped, never queued), receive-to-publish latency p50 / p99 and end-to-end latency (frame stamp to answer
received) p50 / p99, per task. A second table says where a frame's time goes in the node, as the node's
/diagnostics report it: mean ms per frame in the latest-frame slot, decoding, each model stage, the message.
A third, several cameras at 30 Hz each (the default task) in one node and in separate nodes (scripts/
bench_cameras.py): total and per-camera fps, the worst camera's latency, the nodes' resident memory, and
for one node its total fps over one camera's and its memory over the separate nodes'. A fourth, the
speech node's recogniser (scripts/bench_speech.py): world commands spoken by 4 espeak-ng voices at 2
speeds, per split: exact sentences, word error rate, accepted, accepted-but-wrong, end of speech to
`command`.

    .venv/bin/python -P scripts/bench.py [--model-args "..."] [--node-args "..."]
"""
from __future__ import annotations

import argparse
import json
import shlex
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
EVERY_N = 4
NODE_ARGS = "--tasks default,referring,open_vocabulary,visual_prompt --seconds 8"  # one node run per repeat
CAMERA_ARGS = "--cameras 1,2,4 --seconds 8 --repeats 1"  # one node against separate nodes; "" skips
SPEECH_ARGS = "--sentences 400 --splits val shifted"  # x 4 voices x 2 speeds per split; "" skips
STAGE_ORDER = ("wait", "decode", "model_preprocess", "model_pyramid_encoder", "model_vanilla_encoder",
               "model_perceiver", "model_llm", "model_predictor", "model_postprocess", "model_other", "message",
               "publish", "overlay")


def _fmt(value, digits: int = 1) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def node_rows(node: dict) -> dict[str, dict]:
    """bench_node's medians by row name: a task, `default` (the node's own task), or either with its
    llm_every_n_frames variant."""
    med, tasks = node["median"], node.get("tasks", ["default"])
    if "processed_fps" in med:
        return {"default": med}
    if set(med) == set(tasks):
        return med
    return {(name if tasks == ["default"] else f"{task} ({name})"): (m if tasks == ["default"] else m[task])
            for name, m in med.items() for task in ([None] if tasks == ["default"] else tasks)}


def table(model: dict, node: dict) -> list[str]:
    """Markdown lines from bench_model's and bench_node's JSON reports: a row per task."""
    full, per_frame = model["median_ms"]["full_pass"], model["median_ms"]["per_frame_pass"]
    rows = node_rows(node)
    lines = [f"model {model['model']} on {model['device']} ({model['dtype']}), {model['image']}; "
             f"node: {node['image']} at {node['publish_rate_hz']:g} Hz, medians of {node['repeats']} runs", "",
             f"| task | model ms, full | model ms, per-frame | model ms at n={EVERY_N} | model fps at n={EVERY_N} | "
             "node fps | node p50 ms | node p99 ms | end-to-end p50 ms | end-to-end p99 ms |",
             "|---|---|---|---|---|---|---|---|---|---|"]

    def node_cells(m):
        return " | | | | |" if m is None else "".join(
            f" {_fmt(m[k])} |" for k in ("processed_fps", "node_latency_p50_ms", "node_latency_p99_ms",
                                         "end_to_end_p50_ms", "end_to_end_p99_ms"))

    stage_rows = dict(rows)  # before the model's rows take theirs
    for task in full:
        mean = (full[task]["wall"] + (EVERY_N - 1) * per_frame[task]["wall"]) / EVERY_N
        lines.append(f"| {task} | {_fmt(full[task]['wall'])} | {_fmt(per_frame[task]['wall'])} | {_fmt(mean)} | "
                     f"{_fmt(1000 / mean)} |" + node_cells(rows.pop(task, None)))
    for name, m in rows.items():
        lines.append(f"| node: {name.replace('default', 'its default task')} | | | | |" + node_cells(m))
    return lines + [""] + stage_table(stage_rows)


def stage_table(rows: dict[str, dict]) -> list[str]:
    """Where a frame's time goes in the node, mean ms per frame per stage (its /diagnostics), per row."""
    seen = {stage for m in rows.values() for stage in m.get("stages_mean_ms", {})}
    stages = [s for s in STAGE_ORDER if s in seen] + sorted(seen - set(STAGE_ORDER))
    if not stages:
        return []
    lines = ["| node, mean ms per frame | " + " | ".join(s.replace("model_", "model: ") for s in stages) + " |",
             "|---|" + "---|" * len(stages)]
    for name, m in rows.items():
        got = m.get("stages_mean_ms", {})
        lines.append(f"| {name.replace('default', 'its default task')} | "
                     + " | ".join(_fmt(got.get(s)) for s in stages) + " |")
    return lines


def camera_table(report: dict) -> list[str]:
    """bench_cameras' medians: a row per configuration (cameras, one node or separate nodes)."""
    lines = ["| cameras at " + f"{report['rate_hz_per_camera']:g} Hz each | total fps | per camera fps | "
             "latency p50 / p99 ms, worst camera | RSS MiB | total fps / one camera's | RSS / separate nodes' |",
             "|---|---|---|---|---|---|---|"]
    for name, m in report["median"].items():
        cams = m["cameras"].values()
        ratio = report["ratios"].get(name.split(",")[0], {}) if "one node" in name else {}
        lines.append(f"| {name} | {_fmt(m['total_fps'])} | {', '.join(_fmt(c['processed_fps']) for c in cams)} | "
                     f"{_fmt(max(c['latency_p50_ms'] for c in cams), 0)} / "
                     f"{_fmt(max(c['latency_p99_ms'] for c in cams), 0)} | {_fmt(m['rss_MiB'], 0)} | "
                     f"{_fmt(ratio.get('total_fps_over_one_camera'), 2)} | "
                     f"{_fmt(ratio.get('rss_over_separate_nodes'), 2)} |")
    return lines


def speech_table(report: list[dict]) -> list[str]:
    """bench_speech's JSON: a row per split."""
    def pct(value, interval=None):
        return f"{100 * value:.1f}%" + (f" [{100 * interval[0]:.1f}, {100 * interval[1]:.1f}]" if interval else "")

    lines = ["| speech, grammar engine | utterances | exact | WER | accepted | accepted but wrong | "
             "end of speech -> command p50 / p90 ms |", "|---|---|---|---|---|---|---|"]
    for r in report:
        lines.append(f"| {r['split']} ({len(r['voices'])} voices x {len(r['speeds'])} speeds) | {r['n']} | "
                     f"{pct(r['exact'], r['exact_interval'])} | {pct(r['wer'])} | {pct(r['accepted'])} | "
                     f"{pct(r['accepted_wrong'], r['accepted_wrong_interval'])} | "
                     f"{_fmt(r['end_to_command_ms_p50'], 0)} / {_fmt(r['end_to_command_ms_p90'], 0)} |")
    return lines


def _run(script: str, extra: str) -> dict:
    cmd = [sys.executable, "-P", str(ROOT / "scripts" / script), *shlex.split(extra)]
    print(f"== {' '.join(cmd[2:])}", file=sys.stderr, flush=True)
    return json.loads(subprocess.run(cmd, check=True, capture_output=True, text=True, cwd=ROOT).stdout)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--model-args", default="", help="arguments for scripts/bench_model.py")
    p.add_argument("--node-args", default=NODE_ARGS, help=f"arguments for scripts/bench_node.py ({NODE_ARGS})")
    p.add_argument("--camera-args", default=CAMERA_ARGS,
                   help=f"arguments for scripts/bench_cameras.py ({CAMERA_ARGS}; empty: skip it)")
    p.add_argument("--speech-args", default=SPEECH_ARGS,
                   help=f"arguments for scripts/bench_speech.py ({SPEECH_ARGS}; empty: skip it)")
    args = p.parse_args()
    model, node = _run("bench_model.py", args.model_args), _run("bench_node.py", args.node_args)
    cameras = _run("bench_cameras.py", args.camera_args) if args.camera_args else None
    speech = _run("bench_speech.py", args.speech_args) if args.speech_args else None
    print("\n".join(table(model, node) + ([""] + camera_table(cameras) if cameras else [])
                    + ([""] + speech_table(speech) if speech else [])) + "\n")
    print(__doc__.split("\n\n")[1].replace("\n", " ") + "\n")
    print(json.dumps({"bench_model": model, "bench_node": node, "bench_cameras": cameras, "bench_speech": speech},
                     indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
