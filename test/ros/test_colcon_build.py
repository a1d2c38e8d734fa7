"""`colcon build` of the package, as a ROS user builds it, and the executables it installs.

The package's files (not .venv, build outputs or logs) are copied into a temporary workspace's
`src/` and built with the pinned colcon (requirements-test.txt) against this venv's ament wheels.
Then the installed `lib/hyperseg_ros/perception_node`, the file `ros2 run hyperseg_ros
perception_node` starts, runs in the sourced workspace with the installed params file and the
installed embedded model, and answers a frame over DDS. The build time is printed as JSON.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
from live_node import Client, NodeProcess, image, scene

from hyperseg_ros import mask_rle

ROOT = Path(__file__).resolve().parents[2]
NOT_SOURCES = {".venv", "build", "install", "log", "out", ".git", ".pytest_cache", "__pycache__"}
BUILD_TIMEOUT_S = 1200


def _not_sources(directory: str, names: list[str]) -> set[str]:
    return {n for n in names if n in NOT_SOURCES or n.endswith(".log") or n.endswith(".pyc")}


def _in_workspace(ws: Path, executable: Path) -> list[str]:
    """A command line running `executable` with the workspace sourced (install/setup.sh)."""
    return ["bash", "-c", '. "$0/install/setup.sh" && exec "$1" "${@:2}"', str(ws), str(executable)]


@pytest.fixture(scope="module")
def workspace(tmp_path_factory) -> Path:
    ws = tmp_path_factory.mktemp("colcon_ws")
    shutil.copytree(ROOT, ws / "src" / "hyperseg_ros", ignore=_not_sources)
    venv = Path(sys.prefix)
    env = dict(os.environ, AMENT_PREFIX_PATH=str(venv), CMAKE_PREFIX_PATH=str(venv),
               PATH=os.pathsep.join([str(venv / "bin"), os.environ.get("PATH", "")]))
    env.pop("PYTHONPATH", None)  # the build must not see the source tree
    cmd = [str(venv / "bin" / "colcon"), "--log-base", "log", "build", "--base-paths", "src",
           "--packages-select", "hyperseg_ros", "--event-handlers", "console_direct+",
           "--cmake-args", f"-DPython3_EXECUTABLE={sys.executable}", "-DBUILD_TESTING=OFF"]
    started = time.monotonic()
    proc = subprocess.run(cmd, cwd=ws, env=env, capture_output=True, text=True, timeout=BUILD_TIMEOUT_S)
    assert proc.returncode == 0, f"colcon build failed:\n{proc.stdout[-6000:]}\n{proc.stderr[-3000:]}"
    print(json.dumps({"benchmark": "colcon_build", "seconds": round(time.monotonic() - started, 1)}))
    return ws


def _workspace_env(ros_env: dict) -> dict:
    """ros_env without the source tree on PYTHONPATH: only the workspace's install is imported."""
    env = dict(ros_env)
    env["PYTHONPATH"] = os.pathsep.join(p for p in env.get("PYTHONPATH", "").split(os.pathsep)
                                        if p and Path(p).resolve() != ROOT)
    return env


def test_installed_executables_start_with_the_interpreter_of_the_build(workspace):
    prefix = workspace / "install" / "hyperseg_ros"
    for name in ("perception_node", "hyperseg_bag", "hyperseg_command"):
        for folder in ("lib/hyperseg_ros", "bin"):
            exe = prefix / folder / name
            assert os.access(exe, os.X_OK), exe
            assert exe.read_text().splitlines()[0] == f"#!{sys.executable}", exe
    assert (prefix / "share" / "hyperseg_ros" / "models" / "hyperseg-world" / "config.json").is_file()
    # every launch file of the tree is installed (what `ros2 launch hyperseg_ros <file>` finds)
    launch_files = sorted(p.name for p in (ROOT / "launch").glob("*.launch.py"))
    assert "two_cameras.launch.py" in launch_files
    for name in launch_files:
        installed = prefix / "share" / "hyperseg_ros" / "launch" / name
        assert installed.read_text() == (ROOT / "launch" / name).read_text(), installed


def test_installed_hyperseg_bag_runs(workspace, ros_env):
    exe = workspace / "install" / "hyperseg_ros" / "lib" / "hyperseg_ros" / "hyperseg_bag"
    proc = subprocess.run(_in_workspace(workspace, exe) + ["--help"], env=_workspace_env(ros_env),
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert "process" in proc.stdout and "make-demo" in proc.stdout


def test_installed_perception_node_answers_over_dds(workspace, ros_env, tmp_path):
    prefix = workspace / "install" / "hyperseg_ros"
    node = NodeProcess(_workspace_env(ros_env), tmp_path / "node.log",
                       {"num_threads": 1, "device": "cpu", "score_threshold": 0.0},
                       executable=_in_workspace(workspace, prefix / "lib" / "hyperseg_ros" / "perception_node"),
                       params_file=prefix / "share" / "hyperseg_ros" / "config" / "perception.yaml")
    client = Client()
    try:
        client.wait_for_node(node)
        i, answer = client.first_answer(node, image)
        # the embedded model from the install's share/ answers its default vocabulary: the disc is a circle
        img = scene(i)
        disc = (img[..., 0] == 220) & (img[..., 1] == 30)
        ious = [0.0] + [float((m & disc).sum() / (m | disc).sum()) for inst in answer.instances if inst.label == "circle"
                        for m in [mask_rle.decode(inst.mask_rle, answer.height, answer.width)]]
        assert max(ious) > 0.5, [(inst.label, inst.score) for inst in answer.instances]
        # the messages' typesupport came from the workspace, not from this venv
        import psutil

        mapped = {m.path for m in psutil.Process(node.proc.pid).memory_maps()}
        assert any(p.startswith(str(prefix)) and "hyperseg_ros" in Path(p).name for p in mapped), sorted(mapped)
    finally:
        code = node.stop()
        client.close()
    assert code == 0, node.log()[-4000:]


def test_venv_executables_run_with_the_venv_interpreter(ros_env):
    """`make setup` installs the same console scripts into the venv (.venv/bin), as the README runs them."""
    for name in ("perception_node", "hyperseg_bag"):
        exe = Path(sys.prefix) / "bin" / name
        assert exe.read_text().splitlines()[0] == f"#!{sys.executable}", exe
    proc = subprocess.run([str(Path(sys.prefix) / "bin" / "hyperseg_bag"), "process", "--help"], env=ros_env,
                          cwd="/", capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0 and "--image-topic" in proc.stdout, proc.stderr
