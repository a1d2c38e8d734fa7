"""scripts/device_job.sh --smoke: the GPU machine's one call rehearsed on the CPU with this venv.
What it leaves under $OUT would all come back (at most 8 files of at most 16 MiB, at most two
folders down), report.json has its four sections, and the returned files, made into a model
directory by import_device_run, load with load_model and answer a frame. About 1-2 minutes."""
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from hyperseg_ros.training.device_job import SECTIONS, check_limits, loader_size, out_files

ROOT = Path(__file__).resolve().parents[2]
# the subprocesses keep their bytecode in build/pycache, as the job's phases do (no venv is written)
ENV = {**{k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}, "PYTHONPATH": str(ROOT),
       "PYTHONPYCACHEPREFIX": os.environ.get("PYTHONPYCACHEPREFIX", str(ROOT / "build" / "pycache"))}


def test_nothing_on_the_job_path_imports_ros():
    code = ("import sys\n"
            "import hyperseg_ros.training.device_job, hyperseg_ros.training.train, hyperseg_ros.training.evaluate\n"
            "import hyperseg_ros.training.import_device_run, hyperseg_ros.model, hyperseg_ros.model.session\n"
            "bad = [m for m in sys.modules if m.split('.')[0] == 'rclpy' or m.startswith('hyperseg_ros.msg')]\n"
            "assert not bad, bad\n")
    subprocess.run([sys.executable, "-P", "-c", code], env=ENV, check=True, timeout=120)


def test_the_limit_check_names_what_would_not_come_back(tmp_path):
    for i in range(9):
        (tmp_path / f"f{i}").write_text("x")
    (tmp_path / "a" / "b" / "c").mkdir(parents=True)
    (tmp_path / "a" / "b" / "c" / "deep").write_text("x")
    (tmp_path / "odd name").write_text("x")
    problems = check_limits(out_files(tmp_path))
    assert problems[0] == "11 files under $OUT, at most 8 come back"
    assert any(p.startswith("a/b/c/deep: 3 folders down") for p in problems)
    assert any(p.startswith("odd name: name outside") for p in problems)
    assert check_limits(out_files(tmp_path / "a")) == []  # a/b/c/deep seen from a: two folders down


@pytest.mark.parametrize("free_mib, expected", [(24000, (14, 4)), (1024, (4, 1)), (64, (0, 1))])
def test_data_workers_are_sized_to_the_shared_memory(monkeypatch, free_mib, expected):
    class Stat:  # /dev/shm with `free_mib` free (a container's default is 64 MB)
        f_bavail, f_frsize = free_mib, 2**20

    monkeypatch.setattr(os, "statvfs", lambda path: Stat)
    section = {}
    assert loader_size(14, 4, 64, section) == expected  # ~108 MiB per item of 64 samples
    assert section["loader"]["shm_free_MiB"] == free_mib


@pytest.fixture(scope="module")
def smoke(tmp_path_factory):
    out = tmp_path_factory.mktemp("device_job") / "out"
    env = {**ENV, "OUT": str(out), "DEVICE_JOB_PYTHON": sys.executable}
    proc = subprocess.run(["bash", "scripts/device_job.sh", "--smoke"], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=540)
    return out, proc


def test_the_smoke_run_leaves_what_comes_back(smoke):
    out, proc = smoke
    assert proc.returncode == 0, proc.stdout[-4000:]
    files = [p for p in out.rglob("*") if p.is_file()]
    assert 0 < len(files) <= 8, files
    assert all(p.stat().st_size <= 16 * 2**20 for p in files)
    assert all(len(p.relative_to(out).parts) <= 3 for p in files)  # $OUT/a/b/file at the deepest
    names = sorted(str(p.relative_to(out)) for p in files)
    assert "report.json" in names and "job.log" in names and "model/model.safetensors.index.json" in names
    assert not any("tokenizer" in n for n in names)  # it stays home: models/hyperseg-world has it


def test_the_report_has_four_sections_without_errors(smoke):
    out, _ = smoke
    report = json.loads((out / "report.json").read_text())
    assert set(SECTIONS) <= report.keys() and report["job"]["limit_problems"] == []
    for name in SECTIONS:
        assert "error" not in report[name], (name, report[name].get("error"))
    check = report["gpu_check"]["compared"]["cpu bfloat16"]
    assert check["frames"] >= 1 and 0.0 <= check["mask_iou_mean"] <= 1.0
    bench = report["bench_3b"]
    assert "tiny" in bench["note"] and bench["median_ms"]["full_pass"]["referring"]["wall"] > 0
    assert bench["flops_G"]["full_pass"]["referring"] > 0
    train = report["train"]
    assert train["steps"] >= 1 and train["final"]
    assert 0 <= train["throughput"]["data_wait_share"] <= 1 and train["throughput"]["samples_per_s"] > 0
    ev = report["eval"]
    for which in ("start", "end"):
        assert "referring_ciou" in ev[which]["metrics"] and "open_vocabulary_recall" in ev[which]["metrics"]
    assert "referring_ciou" in ev["end_minus_start"]
    for section in (report["gpu_check"], report["bench_3b"], ev["start"], ev["end"]):
        assert section["ros_modules_imported"] == []


def test_the_returned_files_import_load_and_answer_a_frame(smoke, tmp_path):
    out, _ = smoke
    dest = tmp_path / "model"
    subprocess.run([sys.executable, "-P", "-m", "hyperseg_ros.training.import_device_run", str(out), str(dest)],
                   env=ENV, check=True, timeout=300)
    assert (dest / "tokenizer.json").is_file() and (dest / "device_report.json").is_file()

    from hyperseg_ros.command import Command
    from hyperseg_ros.model import load_model
    from hyperseg_ros.model.session import SegmentationSession
    from hyperseg_ros.world.scene import draw_scene
    from hyperseg_ros.world.splits import sample_rng

    model, tokenizer = load_model(str(dest))
    scene = draw_scene(sample_rng("val", 3, 2), 320, 240, num_objects=3)
    ys, xs = np.nonzero(scene.masks[0])
    box = (float(xs.min()), float(ys.min()), float(xs.max() - xs.min() + 1), float(ys.max() - ys.min() + 1))
    session = SegmentationSession(model, tokenizer)
    session.set_command(Command("visual_prompt", boxes=(box,)))
    instances = session.process(scene.image).instances
    assert instances, "no instance for a box drawn around an object"
    mask = instances[0].mask
    assert mask.shape == (240, 320) and (mask & scene.masks[0]).sum() / (mask | scene.masks[0]).sum() > 0.5

    again = subprocess.run([sys.executable, "-P", "-m", "hyperseg_ros.training.import_device_run", str(out), str(dest)],
                           env=ENV, capture_output=True, text=True, timeout=300)
    assert again.returncode == 1 and "exists and is not empty" in again.stderr
