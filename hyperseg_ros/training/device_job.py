"""One call on a lent GPU machine: check the GPU path, time the 3b architecture, train from the
shipped weights, evaluate start against end, and leave everything under $OUT within what comes back.

    OUT=/some/dir bash scripts/device_job.sh            # on the GPU machine (python3 there)
    OUT=/tmp/dj bash scripts/device_job.sh --smoke      # rehearsal here, on the CPU, in a few minutes

Phases, each in its own process with its own time limit, so that a crash or a hang in one is
recorded in the report (an `error` string) and the next still runs; `report.json` is rewritten
after each phase, so a killed job still returns what it measured:

- `gpu_check`: the embedded model through `SegmentationSession` on the accelerator in float32 and
  bfloat16 against CPU float32 on the same world frames (top-1 query, mask IoU, score difference).
- `bench_3b`: the released 3b architecture with random weights (scripts/bench_model.py): per-stage
  ms of a full pass and of the per-frame pass at 640x480, peak GPU memory, and the FLOPs of each
  pass (torch.utils.flop_counter: matmuls, convolutions, attention) against its time (TFLOP/s).
- `train`: `hyperseg_ros.training.train --init-from models/hyperseg-world`, bf16 autocast, data
  workers on all but two cores, time-boxed, weights exported into $OUT/model every 2 minutes as
  safetensors shards of at most 15 MB (the tokenizer stays out: it is models/hyperseg-world's).
- `eval`: start and end weights on the same `val` samples (training.evaluate, small counts; mask
  AP is skipped where pycocotools is missing, with the reason).

What comes back ($OUT, at most 8 files of at most 16 MiB, at most two folders down): report.json,
job.log (written by the shell script), model/{config.json, model.safetensors.index.json, shards}.
`python -P -m hyperseg_ros.training.import_device_run <returned dir> <model dir>` turns them into a
`load_model` directory. Exit status: 0; 2 when a phase failed; 1 when something would not come
back. The orchestrator uses the standard library only (no torch import), so it reports even when
torch itself fails; nothing on this path imports rclpy or hyperseg_ros.msg.
"""
from __future__ import annotations

import argparse
import datetime
import hashlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import traceback
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
START_MODEL = ROOT / "models" / "hyperseg-world"
SECTIONS = ("gpu_check", "bench_3b", "train", "eval")
MAX_FILES, MAX_FILE_BYTES, MAX_FOLDERS_DOWN = 8, 16 * 2**20, 2
NAME_OK = re.compile(r"^[A-Za-z0-9._-]+$")
LOG_NAME, REPORT_NAME, MODEL_DIR = "job.log", "report.json", "model"

# Settings of a real run and of the CPU rehearsal (--smoke). Seconds are upper limits per phase;
# training gets what the budget leaves after the reserve of the later phases.
SETTINGS = {
    "gpu": {
        "budget_s": 570, "check_frames": 6, "check_size": (640, 480), "check_timeout_s": 100,
        "bench_size": "3b", "bench_dtype": "bfloat16", "bench_frames": 8, "bench_warmup": 2, "bench_timeout_s": 150,
        "bench_pyramid_size": 0, "bench_vision_size": 0, "bench_tasks": ("referring", "open_vocabulary", "visual_prompt"),
        "train_batch_size": 64, "train_commands_per_scene": 4, "train_lr": 1e-4, "train_warmup": 50,
        "phases": list(SECTIONS),  # e.g. --set 'phases=["train","eval"]' when the GPU path is already measured
        # the embedded model learns parallel category prompts (names, not list places: MODEL_CARD.md) and
        # reads each mask's outline (model/mask_shape.py: a module the shipped weights may lack, trained fresh)
        "train_config": ["category_prompts=parallel", "mask_shape_size=24"],
        "train_schedule": "",  # training.train --schedule ('' = its default mix)
        "train_init_from": "",  # a model directory in the tree to start from ('' = models/hyperseg-world)
        "train_amp": "bf16", "train_export_every_minutes": 2.0, "train_min_s": 60, "train_overhead_s": 60,
        "eval_samples": 48, "eval_clips": 6, "eval_frames": 8, "eval_timeout_s": 60, "eval_ap_resamples": 20,
        "eval_video": ("clip_referring", "clip_open_vocabulary", "clip_visual_prompt_box", "clip_visual_prompt_point"),
        "final_reserve_s": 10, "threads": 8, "train_threads": 2,
    },
    "smoke": {
        "budget_s": 300, "check_frames": 2, "check_size": (320, 240), "check_timeout_s": 60,
        "bench_size": "tiny", "bench_dtype": "float32", "bench_frames": 2, "bench_warmup": 1, "bench_timeout_s": 60,
        "bench_pyramid_size": 0, "bench_vision_size": 0, "bench_tasks": ("referring", "open_vocabulary", "visual_prompt"),
        "train_batch_size": 2, "train_commands_per_scene": 1, "train_lr": 1e-5, "train_warmup": 2,
        "phases": list(SECTIONS),
        "train_config": ["category_prompts=parallel", "mask_shape_size=24"],
        "train_schedule": "",
        "train_init_from": "",
        "train_amp": "none",  # bf16 autocast on a CPU without bf16 units: ~10x slower (test_train covers it)
        "train_export_every_minutes": 0.1, "train_min_s": 5, "train_overhead_s": 60,
        "train_seconds": 10,
        "eval_samples": 2, "eval_clips": 1, "eval_frames": 8, "eval_timeout_s": 60, "eval_ap_resamples": 5,
        "eval_video": ("clip_referring", "clip_open_vocabulary"),
        "final_reserve_s": 5, "threads": 1, "train_threads": 1,  # 2 threads on a shared 2-core CPU: ~10x slower
    },
}
SMOKE_BENCH_NOTE = ("smoke on the CPU: the `tiny` size with random weights stands in for 3b (3b needs ~13 GB "
                    "and minutes per frame on a CPU); same code path, numbers mean nothing")


# ---------------------------------------------------------------- orchestrator (standard library only)

def _now() -> str:
    return datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")


def write_json(path: Path, data: dict) -> None:
    """In place, one write: a temporary file beside it would count against the files that come back."""
    text = json.dumps(data, indent=1, default=str)
    with open(path, "w") as f:
        f.write(text)


def read_json(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def sha256(path: Path) -> str | None:
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError:
        return None


def out_files(out: Path) -> list[dict]:
    """Every file under `out` with its size, depth and whether its path may come back."""
    rows = []
    for path in sorted(p for p in out.rglob("*") if not p.is_dir()):
        rel = path.relative_to(out)
        rows.append({"path": str(rel), "bytes": path.lstat().st_size, "folders_down": len(rel.parts) - 1,
                     "name_ok": all(NAME_OK.match(part) for part in rel.parts)})
    return rows


def check_limits(files: list[dict]) -> list[str]:
    """What would not come back: too many files, a file too large, too deep, or oddly named."""
    problems = []
    if len(files) > MAX_FILES:
        problems.append(f"{len(files)} files under $OUT, at most {MAX_FILES} come back")
    problems += [f"{f['path']}: {f['bytes']} bytes > {MAX_FILE_BYTES}" for f in files if f["bytes"] > MAX_FILE_BYTES]
    problems += [f"{f['path']}: {f['folders_down']} folders down > {MAX_FOLDERS_DOWN}" for f in files
                 if f["folders_down"] > MAX_FOLDERS_DOWN]
    problems += [f"{f['path']}: name outside [A-Za-z0-9._-]" for f in files if not f["name_ok"]]
    return problems


class Job:
    def __init__(self, out: Path, smoke: bool, budget_s: float | None, python: str, device: str, note: str,
                 overrides: dict | None = None):
        self.out, self.smoke, self.python, self.device = out, smoke, python, device
        self.cfg = {**SETTINGS["smoke" if smoke else "gpu"], **(overrides or {})}
        if budget_s:
            self.cfg["budget_s"] = budget_s
        self.start = time.monotonic()
        self.deadline = self.start + self.cfg["budget_s"]
        self.scratch = Path(tempfile.mkdtemp(prefix="hyperseg-device-job-"))
        self.report: dict = {
            "job": {"smoke": smoke, "started": _now(), "budget_s": self.cfg["budget_s"], "python": python,
                    "device": device, "cpu_count": os.cpu_count(), "notes": [n for n in [note] if n],
                    "settings": self.cfg, "phases": {}},
            **{name: {"status": "not run"} for name in SECTIONS},
        }
        if smoke:
            self.report["job"]["notes"].append("smoke: every phase on the CPU with tiny budgets (a rehearsal)")

    def left(self) -> float:
        return self.deadline - time.monotonic()

    def save(self) -> None:
        self.report["job"]["elapsed_s"] = round(time.monotonic() - self.start, 1)
        write_json(self.out / REPORT_NAME, self.report)

    def child(self, name: str, argv: list[str], timeout_s: float) -> dict:
        """Run a phase process with a time limit (its whole process group is ended at the limit)."""
        timeout_s = max(1.0, min(timeout_s, self.left()))
        began = time.monotonic()
        print(f"\n=== device_job: {name} (limit {timeout_s:.0f} s, {self.left():.0f} s of the budget left) ===",
              flush=True)
        info: dict = {"limit_s": round(timeout_s, 1)}
        try:  # its own process group (same session: whatever ends this job's session ends it too)
            proc = subprocess.Popen([self.python, "-P", *argv], cwd=ROOT, process_group=0)
        except OSError as err:
            info.update(rc=None, error=f"could not start {self.python}: {err}", seconds=0.0)
            return info
        try:
            info["rc"] = proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            info["timed_out"] = True
            info["rc"] = _end_group(proc)
        except BaseException:  # the job itself is stopped (SIGTERM, Ctrl-C): the phase goes with it
            _end_group(proc, grace=3)
            raise
        info["seconds"] = round(time.monotonic() - began, 1)
        self.report["job"]["phases"][name] = info
        return info

    def phase(self, name: str, timeout_s: float, extra: list[str] = ()) -> dict:
        """A phase of this module in its own process -> its result dict (with `error` when it failed)."""
        result_path = self.scratch / f"{name}.json"
        config_path = self.scratch / "config.json"
        write_json(config_path, {"cfg": self.cfg, "device": self.device, "smoke": self.smoke,
                                 "scratch": str(self.scratch), "out": str(self.out)})
        info = self.child(name, ["-m", "hyperseg_ros.training.device_job", "--phase", name, "--result",
                                 str(result_path), "--config", str(config_path), *extra], timeout_s)
        result = read_json(result_path) or {}
        if info.get("timed_out"):
            result.setdefault("error", f"{name}: stopped at its time limit of {info['limit_s']} s (partial results)")
        elif info.get("rc") != 0 and "error" not in result:
            result["error"] = info.get("error") or f"{name}: exit status {info.get('rc')} (see job.log)"
        result["seconds"] = info.get("seconds")
        return result

    # -- phases

    def run_gpu_check(self) -> None:
        self.report["gpu_check"] = self.phase("gpu_check", self.cfg["check_timeout_s"])
        env = self.report["gpu_check"].get("environment")
        if env:
            self.report["job"]["environment"] = env
        self.save()

    def run_bench(self) -> None:
        self.report["bench_3b"] = self.phase("bench_3b", self.cfg["bench_timeout_s"])
        self.save()

    def train_seconds(self) -> float:
        reserve = 2 * self.cfg["eval_timeout_s"] + self.cfg["final_reserve_s"]
        seconds = self.left() - reserve - self.cfg["train_overhead_s"]
        return min(seconds, self.cfg.get("train_seconds", seconds))

    def run_train(self) -> None:
        cfg = self.cfg
        seconds = self.train_seconds()
        start = ROOT / cfg["train_init_from"] if cfg.get("train_init_from") else START_MODEL
        section: dict = {"init_from": str(start.relative_to(ROOT)),
                         "tokenizer_sha256": {n: sha256(start / n) for n in ("tokenizer.json",
                                                                              "tokenizer_config.json")}}
        if seconds < cfg["train_min_s"]:
            section["error"] = f"train: only {seconds:.0f} s left for training (< {cfg['train_min_s']} s); skipped"
            self.report["train"] = section
            self.save()
            return
        ckpt = self.scratch / "train"
        workers = 1 if self.smoke else max(1, (os.cpu_count() or 2) - 2)
        workers, prefetch = loader_size(workers, 4, cfg["train_batch_size"], section)
        argv = ["-m", "hyperseg_ros.training.train", "--init-from", str(start), "--out",
                str(self.out / MODEL_DIR), "--checkpoint", str(ckpt), "--device", self.device,
                "--batch-size", str(cfg["train_batch_size"]), "--commands-per-scene", str(cfg["train_commands_per_scene"]),
                "--lr", str(cfg["train_lr"]), "--warmup", str(cfg["train_warmup"]), "--steps", "1000000",
                "--max-minutes", f"{seconds / 60:.3f}", "--save-every", "1000000000",
                "--export-every-minutes", str(cfg["train_export_every_minutes"]), "--max-shard-size", "15MB",
                "--no-export-tokenizer", "--amp", cfg["train_amp"], "--workers", str(workers),
                "--prefetch", str(prefetch),
                "--threads", str(cfg["train_threads"])]
        configs = cfg.get("train_config") or []
        for item in [configs] if isinstance(configs, str) else configs:
            argv += ["--config", item]
        if cfg.get("train_schedule"):
            argv += ["--schedule", cfg["train_schedule"]]
        section.update(command="python -P " + " ".join(argv[1:]), train_seconds=round(seconds, 1))
        info = self.child("train", argv, seconds + cfg["train_overhead_s"])
        summary = read_json(ckpt / "summary.json")
        if summary:
            section.update(summary)
        history = (read_json(ckpt / "state.json") or {}).get("history") or []
        if history:
            head, tail = history[:20], history[-20:]
            section["loss_first_20_mean"] = round(sum(h["loss"] for h in head) / len(head), 4)
            section["loss_last_20_mean"] = round(sum(h["loss"] for h in tail) / len(tail), 4)
            section["steps_per_kind"] = {k: sum(h["kind"] == k for h in history) for k in sorted({h["kind"] for h in history})}
        if info.get("timed_out"):
            section["error"] = f"train: stopped at its time limit of {info['limit_s']} s; model/ holds the last export"
        elif info.get("rc") != 0:
            section["error"] = info.get("error") or f"train: exit status {info.get('rc')} (see job.log)"
        section["seconds"] = info.get("seconds")
        section["returned_model"] = sorted(p.name for p in (self.out / MODEL_DIR).glob("*")) \
            if (self.out / MODEL_DIR).is_dir() else []
        self.report["train"] = section
        self.save()

    def run_eval(self) -> None:
        from hyperseg_ros.training.import_device_run import assemble

        section: dict = {"split": "val", "seed_offset": 0, "samples_per_task": self.cfg["eval_samples"],
                         "clips_per_task": self.cfg["eval_clips"], "frames_per_clip": self.cfg["eval_frames"]}
        models = {"start": START_MODEL}
        try:  # the returned files made into a load_model directory, as import_device_run does here
            end = self.scratch / "end_model"
            assemble(self.out, end, START_MODEL, force=True, report=False)
            models["end"] = end
        except Exception as err:  # noqa: BLE001 - recorded, the start model is still evaluated
            section["end"] = {"error": f"no end weights to evaluate: {type(err).__name__}: {err}"}
        self.report["eval"] = section
        for which, path in models.items():
            timeout = min(self.cfg["eval_timeout_s"], self.left() - self.cfg["final_reserve_s"] - (
                self.cfg["eval_timeout_s"] / 2 if which == "start" and "end" in models else 0))
            section[which] = self.phase(f"eval_{which}", timeout, ["--model-dir", str(path)])
            self.save()
        start, end = section.get("start", {}).get("metrics") or {}, section.get("end", {}).get("metrics") or {}
        section["end_minus_start"] = {k: _round(end[k]["value"] - start[k]["value"]) for k in start
                                      if k in end and None not in (end[k]["value"], start[k]["value"])}
        failed = [f"{which}: {section[which]['error']}" for which in ("start", "end") if "error" in section.get(which, {})]
        if failed:
            section["error"] = "; ".join(failed)
        self.save()

    def finish(self) -> int:
        files = out_files(self.out)
        if not any(f["path"] == LOG_NAME for f in files):
            files.append({"path": LOG_NAME, "bytes": 0, "folders_down": 0, "name_ok": True})  # written by the script
        problems = check_limits(files)
        self.report["job"].update(out_files=files, limits={"max_files": MAX_FILES, "max_file_bytes": MAX_FILE_BYTES,
                                                           "max_folders_down": MAX_FOLDERS_DOWN},
                                  limit_problems=problems, finished=_now())
        failed = [name for name in SECTIONS if "error" in self.report[name]]
        self.report["job"]["failed_sections"] = failed
        self.save()
        shutil.rmtree(self.scratch, ignore_errors=True)
        print(f"\n=== device_job: done in {time.monotonic() - self.start:.0f} s; failed: {failed or 'none'}; "
              f"limits: {problems or 'ok'}; report: {self.out / REPORT_NAME} ===", flush=True)
        return 1 if problems else 2 if failed else 0


def _end_group(proc: subprocess.Popen, grace: float = 10) -> int | None:
    """SIGTERM, then SIGKILL, to the phase's process group (the phase and its data workers only)."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            break
        try:
            proc.wait(timeout=grace)
            break
        except subprocess.TimeoutExpired:
            continue
    return proc.returncode


def _stopped(signum, frame):
    raise KeyboardInterrupt(f"signal {signum}")


def loader_size(workers: int, prefetch: int, batch_size: int, section: dict) -> tuple[int, int]:
    """Data workers and their prefetch depth that fit in shared memory: each item a worker hands over
    waits in /dev/shm (a container's may be 64 MB), so at most half of the free space is planned for
    workers x prefetch items of the estimated size (a clip item: 1.5 image batches of the start
    model's input sizes). Too little room for one item per worker: fewer workers, down to 0."""
    config = read_json(START_MODEL / "config.json") or {}
    sides = (config.get("pyramid_image_size") or 1024, config.get("vision_image_size") or 384)
    item = int(1.5 * batch_size * 4 * 3 * sum(side * side for side in sides) * 1.2)  # float32 RGB + targets
    try:
        stat = os.statvfs("/dev/shm")
        free = stat.f_bavail * stat.f_frsize
    except OSError:
        free = None
    slots = max(0, int(0.5 * free // item)) if free is not None else workers * prefetch
    if slots < workers * prefetch:
        prefetch = max(1, min(prefetch, slots // max(workers, 1)))
        workers = min(workers, slots // prefetch)
    section["loader"] = {"workers": workers, "prefetch": prefetch, "item_MiB_estimate": round(item / 2**20, 1),
                         "shm_free_MiB": None if free is None else round(free / 2**20)}
    return workers, prefetch


def _round(x, digits: int = 4):
    return None if x is None or x != x else round(float(x), digits)


def orchestrate(args) -> int:
    out = Path(args.out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    for stale in (out / REPORT_NAME, out / MODEL_DIR):  # an earlier run's results (the GPU machine starts empty)
        shutil.rmtree(stale, ignore_errors=True) if stale.is_dir() else stale.unlink(missing_ok=True)
    device = args.device or ("cpu" if args.smoke else "cuda")
    overrides = {}
    for item in args.set:
        key, _, value = item.partition("=")
        if key not in SETTINGS["gpu"]:
            raise SystemExit(f"--set {item}: unknown setting {key!r} (one of {', '.join(SETTINGS['gpu'])})")
        try:
            overrides[key] = json.loads(value)
        except ValueError:
            overrides[key] = value
    unknown = set(overrides.get("phases", SECTIONS)) - set(SECTIONS)
    if unknown:
        raise SystemExit(f"--set phases: unknown {', '.join(sorted(unknown))} (phases: {', '.join(SECTIONS)})")
    job = Job(out, args.smoke, args.budget_s, args.python or sys.executable, device,
              os.environ.get("DEVICE_JOB_NOTE", ""), overrides)
    job.save()
    steps = [("gpu_check", job.run_gpu_check), ("bench_3b", job.run_bench), ("train", job.run_train),
             ("eval", job.run_eval)]
    signal.signal(signal.SIGTERM, _stopped)
    for section, run in steps:
        if section not in job.cfg["phases"]:
            job.report[section] = {"skipped": "not in the phases setting"}
            continue
        try:
            run()
        except KeyboardInterrupt as err:  # stopped from outside: say so, keep what was measured
            job.report[section] = {**job.report.get(section, {}), "error": f"the job was stopped ({err}) during {section}"}
            job.report["job"]["stopped"] = f"{err} during {section}"
            break
        except Exception as err:  # noqa: BLE001 - a phase's failure is recorded; the next still runs
            job.report[section] = {**job.report.get(section, {}), "error": f"{type(err).__name__}: {err}",
                                   "traceback": traceback.format_exc(limit=4)}
            job.save()
    return job.finish()


# ---------------------------------------------------------------- phases (child processes; torch here)

def _imports_ros() -> list[str]:
    return sorted(m for m in sys.modules if m.split(".")[0] == "rclpy" or m.startswith("hyperseg_ros.msg"))


def environment() -> dict:
    import numpy
    import torch
    import transformers

    env = {"python": sys.version.split()[0], "torch": torch.__version__, "transformers": transformers.__version__,
           "numpy": numpy.__version__, "cuda_available": torch.cuda.is_available(), "torch_cuda": torch.version.cuda}
    for name in ("safetensors", "tokenizers", "cv2", "scipy", "pycocotools"):
        try:
            env[name] = getattr(__import__(name), "__version__", "present")
        except ImportError:
            env[name] = None
    if torch.cuda.is_available():
        props = torch.cuda.get_device_properties(0)
        env.update(gpu=torch.cuda.get_device_name(0), gpu_memory_GiB=round(props.total_memory / 2**30, 1),
                   capability=list(torch.cuda.get_device_capability(0)), bf16=torch.cuda.is_bf16_supported())
    return env


def _sync(device) -> None:
    import torch

    if torch.device(device).type == "cuda":
        torch.cuda.synchronize()


def check_frames(count: int, size: tuple[int, int]):
    """(image, command) pairs: val scenes of the world with a referring command that has a target."""
    from hyperseg_ros.world.commands import sample_command
    from hyperseg_ros.world.scene import draw_scene
    from hyperseg_ros.world.splits import sample_rng

    pairs = []
    for i in range(count):
        rng = sample_rng("val", 10_000 + i, 9)
        scene = draw_scene(rng, *size)
        pairs.append((scene.image, sample_command(rng, scene, "referring", no_match_rate=0.0).command))
    return pairs


def answers(device: str, dtype_name: str, pairs) -> dict:
    """The embedded model's top-1 answer to each pair: query index, score, mask; ms per frame."""
    import statistics

    import torch

    from hyperseg_ros.model import load_model
    from hyperseg_ros.model.session import SegmentationSession

    dtype = {"float32": torch.float32, "bfloat16": torch.bfloat16}[dtype_name]
    model, tokenizer = load_model("", device=device, dtype=dtype)
    queries: list[int] = []
    segment = model.segment

    def recorded(*a, **k):
        predictions = segment(*a, **k)
        queries.append(int(predictions.refer_logits[0].float().argmax()))
        return predictions

    model.segment = recorded  # the session asks the model through this attribute
    session = SegmentationSession(model, tokenizer, score_threshold=0.0)  # always a top-1 answer
    out = {"query": [], "score": [], "mask": [], "ms": []}
    warm = torch.device(device).type == "cuda"  # a first, untimed pass (CUDA start-up, kernel choice)
    for i, (image, command) in enumerate(([pairs[0]] if warm else []) + list(pairs)):
        session.set_command(command)
        queries.clear()
        start = time.perf_counter()
        result = session.process(image)
        _sync(device)
        if warm and i == 0:
            continue
        out["ms"].append((time.perf_counter() - start) * 1e3)
        top = result.instances[0] if result.instances else None
        out["query"].append(queries[-1])
        out["score"].append(top.score if top else None)
        out["mask"].append(top.mask if top is not None else None)
    out["median_ms"] = round(statistics.median(out["ms"]), 2)
    del model
    if torch.device(device).type == "cuda":
        torch.cuda.empty_cache()
    return out


def compare(reference: dict, other: dict) -> dict:
    import numpy as np

    ious, score_diffs = [], []
    for a, b in zip(reference["mask"], other["mask"]):
        if a is None or b is None:
            ious.append(1.0 if a is None and b is None else 0.0)
            continue
        union = np.logical_or(a, b).sum()
        ious.append(1.0 if union == 0 else float(np.logical_and(a, b).sum() / union))
    for a, b in zip(reference["score"], other["score"]):
        if a is not None and b is not None:
            score_diffs.append(abs(a - b))
    same = [a == b for a, b in zip(reference["query"], other["query"])]
    return {"frames": len(same), "same_top1_query": sum(same), "mask_iou_mean": _round(np.mean(ious)),
            "mask_iou_min": _round(min(ious)), "score_abs_diff_mean": _round(np.mean(score_diffs) if score_diffs else None),
            "score_abs_diff_max": _round(max(score_diffs) if score_diffs else None),
            "median_ms_per_frame": other["median_ms"]}


def phase_gpu_check(ctx: dict, result: dict, save) -> None:
    import torch

    cfg, device = ctx["cfg"], ctx["device"]
    torch.set_num_threads(cfg["threads"])
    result["environment"] = environment()
    save()
    if torch.device(device).type == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("CUDA is not available to torch on this machine")
    pairs = check_frames(cfg["check_frames"], tuple(cfg["check_size"]))
    result.update(model="embedded (models/hyperseg-world)", task="referring (world val scenes)",
                  frames=len(pairs), image=f"{cfg['check_size'][0]}x{cfg['check_size'][1]}",
                  reference="cpu float32", compared={})
    reference = answers("cpu", "float32", pairs)
    result["reference_median_ms_per_frame"] = reference["median_ms"]
    result["reference_top1_query"] = reference["query"]
    save()
    others = [(device, "float32"), (device, "bfloat16")] if device != "cpu" else [("cpu", "bfloat16")]
    for dev, dtype in others:
        name = f"{dev} {dtype}"
        try:
            result["compared"][name] = compare(reference, answers(dev, dtype, pairs))
        except Exception as err:  # noqa: BLE001 - the other configuration still runs
            result["compared"][name] = {"error": f"{type(err).__name__}: {err}"}
        save()
    fp32 = result["compared"].get(f"{device} float32", {})
    result["agrees_fp32"] = (fp32.get("same_top1_query") == len(pairs) and (fp32.get("mask_iou_min") or 0) >= 0.98) \
        if device != "cpu" else None


def _bench_module():
    import importlib.util

    spec = importlib.util.spec_from_file_location("bench_model", ROOT / "scripts" / "bench_model.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def count_flops(model, tokenizer, command, frame, language_pass: bool) -> int:
    """FLOPs (matmul, convolution, attention) of one session pass on `frame`: with the language side,
    or the per-frame pass (the language output cached by a first, uncounted frame)."""
    from torch.utils.flop_counter import FlopCounterMode

    from hyperseg_ros.model.session import SegmentationSession

    session = SegmentationSession(model, tokenizer, score_threshold=0.0, llm_every_n_frames=1 if language_pass else 1000,
                                  llm_rerun_score_threshold=0.0)
    session.set_command(command)
    if not language_pass:
        session.process(frame)
    with FlopCounterMode(display=False) as counter:
        session.process(frame)
    return int(counter.get_total_flops())


def phase_bench_3b(ctx: dict, result: dict, save) -> None:
    import argparse as ap

    import torch

    cfg, device = ctx["cfg"], ctx["device"]
    torch.set_num_threads(cfg["threads"])
    bench = _bench_module()  # scripts/bench_model.py: the model build and the per-stage medians
    size = cfg["bench_size"]
    result.update(size=size, device=device, dtype=cfg["bench_dtype"], image="640x480", frames=cfg["bench_frames"],
                  warmup=cfg["bench_warmup"], weights="random")
    if ctx["smoke"]:
        result["note"] = SMOKE_BENCH_NOTE
    began = time.perf_counter()
    ns = ap.Namespace(model="", size=size, device=device, dtype=cfg["bench_dtype"],
                      pyramid_size=cfg["bench_pyramid_size"], vision_size=cfg["bench_vision_size"])
    model, tokenizer, name = bench.build(ns)
    model.requires_grad_(False)  # inference only (and the FLOP counter's module tracker wants no grad hooks)
    _sync(device)
    result.update(model=name, build_s=round(time.perf_counter() - began, 1),
                  params_M=round(sum(p.numel() for p in model.parameters()) / 1e6, 2),
                  pyramid_image_size=model.config.pyramid_image_size, vision_image_size=model.config.vision_image_size)
    if torch.device(device).type == "cuda":
        torch.cuda.reset_peak_memory_stats()
    frames = bench._frames(cfg["bench_frames"], 480, 640)
    result["median_ms"] = {"full_pass": {}, "per_frame_pass": {}}
    result["flops_G"] = {"full_pass": {}, "per_frame_pass": {}}
    result["tflops_per_s"] = {"full_pass": {}, "per_frame_pass": {}}
    for task in cfg["bench_tasks"]:
        command = bench.COMMANDS[task]
        for kind, every_n in (("full_pass", 1), ("per_frame_pass", len(frames))):
            try:
                medians = bench._medians(model, tokenizer, command, frames, every_n, cfg["bench_warmup"])
                result["median_ms"][kind][task] = medians
                flops = count_flops(model, tokenizer, command, frames[0], every_n == 1)
                result["flops_G"][kind][task] = round(flops / 1e9, 2)
                wall = medians.get("wall")
                result["tflops_per_s"][kind][task] = round(flops / (wall / 1e3) / 1e12, 3) if wall else None
            except Exception as err:  # noqa: BLE001 - the other passes still run
                result["median_ms"][kind][task] = {"error": f"{type(err).__name__}: {err}"}
            save()
    if torch.device(device).type == "cuda":
        result["peak_memory_MiB"] = round(torch.cuda.max_memory_allocated() / 2**20, 1)
    else:
        import resource

        result["peak_rss_MiB"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    result["flops_note"] = ("FLOPs from torch.utils.flop_counter (matmuls, convolutions, attention; not deformable "
                            "sampling, norms or element-wise ops) of one pass; TFLOP/s = those FLOPs / the median wall "
                            "time of the pass, pre- and post-processing included")


def _stat(values, interval, n) -> dict:
    return {"value": _round(values), "low": _round(interval[0]), "high": _round(interval[1]), "n": int(n)}


def quick_metrics(ev, samples: int, clips: int, frames: int, video: tuple[str, ...], metrics: dict, save) -> None:
    """The evaluation's metrics on a small sample, through training.evaluate's Evaluation (the same
    streams, seeds and scoring as `make eval`), into `metrics` as they come (saved after each task):
    referring / reasoning cIoU, no-match and false-abstention rates, open-vocabulary precision /
    recall (and AP50 where pycocotools is installed), and the video metrics of the `video` streams."""
    import numpy as np

    from hyperseg_ros.training.metrics import bootstrap_mean, bootstrap_ratio

    def mean(values):
        return float(np.mean(values)) if len(values) else float("nan")

    abstained, no_match = [], []
    for task in ("referring", "reasoning"):
        r = ev.text_task(task, samples)
        acc = r["all"]
        metrics[f"{task}_ciou"] = _stat(acc.ciou, bootstrap_ratio(acc.intersections, acc.unions), len(acc.unions))
        abstained += r["abstained"]
        no_match += r["no_match"]
        save()
    metrics["no_match_rate"] = _stat(mean(no_match), bootstrap_mean(no_match), len(no_match))
    metrics["false_abstention_rate"] = _stat(mean(abstained), bootstrap_mean(abstained), len(abstained))
    ov = ev.open_vocabulary(samples)
    tp, predicted, truth = (np.array(ov[k], float) for k in ("tp", "predicted", "truth"))
    metrics["open_vocabulary_precision"] = _stat(tp.sum() / predicted.sum() if predicted.sum() else float("nan"),
                                                 bootstrap_ratio(tp, predicted), predicted.sum())
    metrics["open_vocabulary_recall"] = _stat(tp.sum() / truth.sum() if truth.sum() else float("nan"),
                                              bootstrap_ratio(tp, truth), truth.sum())
    for key, values in (("open_vocabulary_label_accuracy", ov["named"]),
                        ("open_vocabulary_permutation_consistency", ov["kept_label"])):
        metrics[key] = _stat(mean(values), bootstrap_mean(values), len(values))
    if not ov["ap"].skipped:
        metrics["open_vocabulary_ap50"] = _stat(ov["ap"].evaluate()["AP50"], ov["ap"].bootstrap(ev.ap_resamples)["AP50"],
                                                samples)
    save()
    for stream in video:
        t = ev.clips(stream, clips, frames)
        if stream == "clip_open_vocabulary":
            sw, fr = np.array(t["switches"], float), np.array(t["frames"], float)
            metrics["id_switches_per_100_frames"] = _stat(100 * sw.sum() / max(fr.sum(), 1),
                                                          [100 * x for x in bootstrap_ratio(sw, fr)], len(sw))
            matched, total = np.array(t["matched"], float), np.array(t["truth"], float)
            metrics["id_coverage"] = _stat(matched.sum() / total.sum() if total.sum() else float("nan"),
                                           bootstrap_ratio(matched, total), len(matched))
        else:
            name = "video_jf" if stream == "clip_referring" else stream.removeprefix("clip_") + "_jf"
            metrics[name] = _stat(mean(t["jf"]), bootstrap_mean(t["jf"]), len(t["jf"]))
        save()


def phase_eval(ctx: dict, result: dict, save, model_dir: str) -> None:
    import statistics

    import torch

    from hyperseg_ros.model import load_model
    from hyperseg_ros.model.session import SegmentationSession
    from hyperseg_ros.training.evaluate import Evaluation
    from hyperseg_ros.training.metrics import pycocotools_missing

    cfg, device = ctx["cfg"], ctx["device"]
    torch.set_num_threads(cfg["threads"])
    model, tokenizer = load_model(model_dir, device=device)
    result.update(model=model_dir, device=device, dtype="float32", session="the node's default parameters",
                  video_streams=list(cfg["eval_video"]))
    skipped = pycocotools_missing()
    if skipped:
        result["ap"] = skipped
    ev = Evaluation(SegmentationSession(model, tokenizer), "val", 0)
    ev.ap_resamples = cfg["eval_ap_resamples"]
    result["metrics"] = {}
    quick_metrics(ev, cfg["eval_samples"], cfg["eval_clips"], cfg["eval_frames"], tuple(cfg["eval_video"]),
                  result["metrics"], save)
    result["median_frame_ms"] = _round(statistics.median(ev.frame_ms), 2) if ev.frame_ms else None


def run_phase(args) -> int:
    ctx = json.loads(Path(args.config).read_text())
    result: dict = {"status": "running"}
    path = Path(args.result)

    def save() -> None:
        result["ros_modules_imported"] = _imports_ros()
        write_json(path, result)

    save()
    try:
        if args.phase == "gpu_check":
            phase_gpu_check(ctx, result, save)
        elif args.phase == "bench_3b":
            phase_bench_3b(ctx, result, save)
        elif args.phase.startswith("eval_"):
            phase_eval(ctx, result, save, args.model_dir)
        else:
            raise ValueError(f"unknown phase {args.phase}")
        result["status"] = "done"
        rc = 0
    except Exception as err:  # noqa: BLE001 - written into the report by the orchestrator
        result.update(status="failed", error=f"{type(err).__name__}: {err}", traceback=traceback.format_exc(limit=6))
        traceback.print_exc()
        rc = 1
    save()
    return rc


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--out", default=os.environ.get("OUT", ""), help="what comes back ($OUT)")
    p.add_argument("--smoke", action="store_true", help="rehearsal on the CPU with tiny budgets")
    p.add_argument("--budget-s", type=float, default=float(os.environ.get("DEVICE_JOB_BUDGET_S") or 0) or None,
                   help="total wall budget in seconds (default 570 on a GPU, 300 for --smoke)")
    p.add_argument("--device", default="", help="accelerator (default cuda; cpu with --smoke)")
    p.add_argument("--python", default="", help="interpreter of the phases (default: this one)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="override a setting of SETTINGS (value as JSON), e.g. --set train_batch_size=96")
    p.add_argument("--phase", help=argparse.SUPPRESS)
    p.add_argument("--result", help=argparse.SUPPRESS)
    p.add_argument("--config", help=argparse.SUPPRESS)
    p.add_argument("--model-dir", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.phase:
        return run_phase(args)
    if not args.out:
        p.error("--out or $OUT is required")
    return orchestrate(args)


if __name__ == "__main__":
    sys.exit(main())
