"""Turn the files a GPU run of scripts/device_job.sh returned into a `load_model` directory.

    python -P -m hyperseg_ros.training.import_device_run <returned dir> <model dir>
    python -P -m hyperseg_ros.training.import_device_run /work/.device/files out/gpu-model --force

<returned dir> holds report.json and model/ (config.json, model.safetensors.index.json and the
shards). The tokenizer never comes back (it is the one of the weights the run started from,
models/hyperseg-world): it is copied from `--tokenizer-from`, after checking that it is the one the
run used (sha256 in report.json). report.json goes along as device_report.json. The directory is
then loaded with `load_model` (strictly: every weight present, none left over) and the run's
training and evaluation numbers are printed. Training moves the evidence the open-vocabulary name scorer was
fitted on: refit it first (`make train-names NAMES_FROM=<model dir> NAMES_OUT=<new dir>`, minutes on a CPU).
Judge the weights on the full val split
(`python -P -m hyperseg_ros.training.evaluate --model <model dir> --split val`, what `make eval`
runs) and with `test/quality` (HYPERSEG_MODEL_PATH=<model dir>) before they replace the shipped model.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import shutil
import sys
from pathlib import Path

TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json")
INDEX = "model.safetensors.index.json"


class DeviceRunError(ValueError):
    """The returned files do not make a model directory; the message says which file."""


def _model_files(source: Path) -> list[Path]:
    """config.json, then the weights: the index and the shards it names, or one model.safetensors."""
    files = [source / "config.json"]
    if (source / INDEX).is_file():
        try:
            shards = sorted(set(json.loads((source / INDEX).read_text())["weight_map"].values()))
        except (ValueError, KeyError, TypeError, AttributeError) as err:
            raise DeviceRunError(f"{source / INDEX}: not a safetensors index ({err!r})") from None
        for name in shards:  # plain names only; load_model checks them again, strictly
            if not isinstance(name, str) or Path(name).name != name or name in ("", ".", ".."):
                raise DeviceRunError(f"{source / INDEX}: shard entry {name!r} is not a plain file name")
        files += [source / INDEX] + [source / name for name in shards]
    else:
        files.append(source / "model.safetensors")
    missing = [str(f) for f in files if not f.is_file()]
    if missing:
        raise DeviceRunError(f"missing: {', '.join(missing)}")
    return files


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def assemble(returned: Path, dest: Path, tokenizer_from: Path, force: bool = False, report: bool = True) -> dict:
    """Copy the returned model (returned/model/, or returned/ itself) and a tokenizer into `dest`.
    Standard library only (the device job calls it before evaluating). -> the run's report or {}."""
    returned, dest = Path(returned), Path(dest)
    source = returned / "model" if (returned / "model" / "config.json").is_file() else returned
    files = _model_files(source)
    run = {}
    report_path = returned / "report.json"
    if report_path.is_file():
        try:
            run = json.loads(report_path.read_text())
        except ValueError as err:
            raise DeviceRunError(f"{report_path}: not JSON ({err})") from None
    tokenizer_source = source if all((source / n).is_file() for n in TOKENIZER_FILES) else Path(tokenizer_from)
    if tokenizer_source != source:
        expected = (run.get("train") or {}).get("tokenizer_sha256") or {}
        for name in TOKENIZER_FILES:
            if not (tokenizer_source / name).is_file():
                raise DeviceRunError(f"{tokenizer_source / name}: missing (the tokenizer did not come back)")
            if expected.get(name) and expected[name] != _sha256(tokenizer_source / name) and not force:
                raise DeviceRunError(f"{tokenizer_source / name} is not the tokenizer the run trained with "
                                   f"(sha256 differs from report.json); pass --tokenizer-from or --force")
    if dest.exists() and any(dest.iterdir()):
        if not force:
            raise DeviceRunError(f"{dest}: exists and is not empty (pass --force to replace it)")
        shutil.rmtree(dest)
    dest.mkdir(parents=True, exist_ok=True)
    for f in files:
        shutil.copyfile(f, dest / f.name)
    for name in TOKENIZER_FILES:
        shutil.copyfile(tokenizer_source / name, dest / name)
    if report and run:
        shutil.copyfile(report_path, dest / "device_report.json")
    return run


def _summary(run: dict) -> dict:
    train, ev = run.get("train") or {}, run.get("eval") or {}
    return {
        "gpu": (run.get("job") or {}).get("environment", {}).get("gpu"),
        "smoke": (run.get("job") or {}).get("smoke"),
        "train": {k: train.get(k) for k in ("steps", "seconds_total", "final_loss_ema", "loss_first_20_mean",
                                            "loss_last_20_mean", "error") if train.get(k) is not None},
        "throughput": train.get("throughput"),
        "eval_end_minus_start": ev.get("end_minus_start"),
        "failed_sections": (run.get("job") or {}).get("failed_sections"),
    }


def _shipped_model_dir() -> Path:
    """The embedded model, found as the node finds it (checkout or installed share/), not beside this file."""
    from hyperseg_ros.model import default_model_dir

    return default_model_dir()


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("returned", help="the folder the GPU run's files came back to (report.json, model/)")
    p.add_argument("dest", help="the model directory to write")
    p.add_argument("--tokenizer-from", default="",
                   help="where the tokenizer comes from when it did not come back (default: the shipped model)")
    p.add_argument("--force", action="store_true", help="replace a non-empty DEST; accept a different tokenizer")
    args = p.parse_args(argv)
    try:
        tokenizer_from = Path(args.tokenizer_from) if args.tokenizer_from else _shipped_model_dir()
        run = assemble(Path(args.returned), Path(args.dest), tokenizer_from, args.force)
    except (DeviceRunError, OSError) as err:
        print(f"import_device_run: {err}", file=sys.stderr)
        return 1
    from hyperseg_ros.model import load_model

    model, tokenizer = load_model(args.dest)  # strict: a missing or surplus weight is an error
    params = sum(p.numel() for p in model.parameters())
    print(json.dumps({"model_dir": args.dest, "params_M": round(params / 1e6, 2), **_summary(run)}, indent=1))
    print(f"loaded {args.dest}. Refit its name scorer (make train-names NAMES_FROM={args.dest} NAMES_OUT=<dir>), then "
          f"judge that: python -P -m hyperseg_ros.training.evaluate --model <dir> --split val; "
          f"HYPERSEG_MODEL_PATH=<dir> python -P -m pytest test/quality -q")
    return 0


if __name__ == "__main__":
    sys.exit(main())
