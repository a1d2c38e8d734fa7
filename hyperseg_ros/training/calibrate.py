"""Choose a model's score threshold per task on `val` and write it into its config.json.

    python -P -m hyperseg_ros.training.evaluate --split val --model DIR --out out/eval
    python -P -m hyperseg_ros.training.calibrate --model DIR --val out/eval/val/eval.json \
        --plot DIR/calibration.png --show out/eval/test/eval.json out/eval/shifted/eval.json

The evaluation keeps every answer's score (its report's `curves`), so each threshold of
THRESHOLD_GRID can be judged without running the model again. The rule, per task:
- referring, reasoning: the highest no-match rate (commands without a target left unanswered)
  whose false abstention (commands with a target left unanswered) stays at most 0.05; where no
  threshold keeps it there, the lowest threshold;
- open vocabulary: the best F1 of precision and recall (IoU >= 0.5 with the right label);
- visual prompt: the best mean J&F over the box and point clips.
Ties go to the lowest threshold. The node uses these unless its `score_threshold` is set.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

MAX_FALSE_ABSTENTION = 0.05
TEXT_TASKS = ("referring", "reasoning")


def text_curve(records: list[dict], thresholds) -> dict[str, list[float]]:
    """Per threshold: no-match rate, false-abstention rate and cIoU of referring/reasoning records
    (target, score, inter, union, gt of each command's top answer)."""
    out = {"no_match": [], "false_abstention": [], "ciou": []}
    targets = [r for r in records if r["target"]]
    absent = [r for r in records if not r["target"]]
    for t in thresholds:
        out["no_match"].append(float(np.mean([r["score"] < t for r in absent])) if absent else float("nan"))
        out["false_abstention"].append(float(np.mean([r["score"] < t for r in targets])) if targets else float("nan"))
        inter = sum(r["inter"] for r in targets if r["score"] >= t)
        union = sum(r["union"] if r["score"] >= t else r["gt"] for r in targets)
        out["ciou"].append(inter / union if union else float("nan"))
    return out


def _first_best(values: list[float]) -> int:
    values = np.nan_to_num(np.asarray(values, float), nan=-np.inf)
    return int(np.flatnonzero(values == values.max())[0])


def choose_text(curve: dict[str, list[float]]) -> int:
    """Index of the highest no-match rate with false abstention <= MAX_FALSE_ABSTENTION (else 0)."""
    allowed = [nm if fa <= MAX_FALSE_ABSTENTION else -np.inf
               for nm, fa in zip(curve["no_match"], curve["false_abstention"])]
    return _first_best(allowed) if np.isfinite(max(allowed)) else 0


def open_vocabulary_curve(curve: dict) -> dict[str, list[float]]:
    tp, predicted, truth = np.asarray(curve["tp"], float), np.asarray(curve["predicted"], float), curve["truth"]
    precision = np.where(predicted > 0, tp / np.maximum(predicted, 1), np.nan)
    recall = tp / truth if truth else np.full_like(tp, np.nan)
    f1 = np.where(precision + recall > 0, 2 * precision * recall / np.maximum(precision + recall, 1e-12), 0.0)
    return {"precision": precision.tolist(), "recall": recall.tolist(), "f1": np.nan_to_num(f1).tolist()}


def choose(report: dict) -> dict[str, float]:
    """{task: threshold} chosen by the rule above from one evaluation report's curves."""
    curves = report["curves"]
    grid = curves["thresholds"]
    chosen = {task: grid[choose_text(text_curve(curves[task], grid))] for task in TEXT_TASKS}
    chosen["open_vocabulary"] = grid[_first_best(open_vocabulary_curve(curves["open_vocabulary"])["f1"])]
    chosen["visual_prompt"] = grid[_first_best(curves["visual_prompt"]["jf"])]
    return chosen


def write_thresholds(model_dir: Path, thresholds: dict[str, float]) -> None:
    path = model_dir / "config.json"
    config = json.loads(path.read_text())
    config["score_thresholds"] = {k: float(v) for k, v in thresholds.items()}
    path.write_text(json.dumps(config, indent=2, sort_keys=True) + "\n")


def plot(reports: list[dict], thresholds: dict[str, float], path: Path) -> None:
    """One row per report: no-match vs false abstention (referring, reasoning), open-vocabulary
    precision vs recall, visual-prompt J&F vs threshold; the chosen thresholds marked."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(len(reports), 3, figsize=(13, 3.6 * len(reports)), squeeze=False)
    for row, report in zip(axes, reports):
        curves = report["curves"]
        grid = curves["thresholds"]
        for task, colour in zip(TEXT_TASKS, ("tab:blue", "tab:orange")):
            c = text_curve(curves[task], grid)
            row[0].plot(c["false_abstention"], c["no_match"], ".-", color=colour, label=task)
            k = grid.index(thresholds[task])
            row[0].plot(c["false_abstention"][k], c["no_match"][k], "o", ms=10, mfc="none", color=colour)
        row[0].axvline(MAX_FALSE_ABSTENTION, color="grey", lw=0.8, ls="--")
        row[0].set(xlabel="false abstention", ylabel="no-match rate", title=f"{report['split']}: referring, reasoning")
        row[0].legend(fontsize=7)
        ov = open_vocabulary_curve(curves["open_vocabulary"])
        row[1].plot(ov["recall"], ov["precision"], ".-")
        k = grid.index(thresholds["open_vocabulary"])
        row[1].plot(ov["recall"][k], ov["precision"][k], "o", ms=10, mfc="none", color="red")
        row[1].set(xlabel="recall", ylabel="precision", title=f"{report['split']}: open vocabulary", xlim=(0, 1),
                   ylim=(0, 1))
        row[2].plot(grid, curves["visual_prompt"]["jf"], ".-")
        row[2].axvline(thresholds["visual_prompt"], color="red", lw=0.8)
        row[2].set(xlabel="score threshold", ylabel="J&F", title=f"{report['split']}: visual prompt", ylim=(0, 1))
        for ax in row:
            ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def main(argv: list[str] | None = None) -> dict[str, float]:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--model", required=True, help="model directory whose config.json receives the thresholds")
    p.add_argument("--val", required=True, help="eval.json of the model on the val split")
    p.add_argument("--plot", default="", help="PNG of the curves with the chosen points")
    p.add_argument("--show", nargs="*", default=[], help="further eval.json files (test, shifted) to plot")
    args = p.parse_args(argv)
    val = json.loads(Path(args.val).read_text())
    if val["split"] != "val":
        raise SystemExit(f"{args.val}: thresholds are chosen on val, not {val['split']}")
    thresholds = choose(val)
    write_thresholds(Path(args.model), thresholds)
    if args.plot:
        plot([val] + [json.loads(Path(f).read_text()) for f in args.show], thresholds, Path(args.plot))
    print(json.dumps(thresholds))
    return thresholds


if __name__ == "__main__":
    main()
