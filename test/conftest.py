"""Shared fixtures: the source tree on sys.path, the model directory the tests run, ROS isolation.

Tests run as `python -P -m pytest` (ros2-on-pypi.md G7), so the repository root is not on
sys.path; it is put first here so the source tree's `hyperseg_ros` is imported, with the
generated `hyperseg_ros.msg` merged in from the installed copy by `pkgutil.extend_path`.
"""
from __future__ import annotations

import faulthandler
import itertools
import os
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))



def pytest_configure(config):
    # rclpy's node creation imports lark, which imports the deprecated sre_parse (G6)
    config.addinivalue_line("filterwarnings", "ignore:module 'sre_:DeprecationWarning")


# A run with a deadline (CI's: HYPERSEG_TEST_DEADLINE_S seconds from the start) fails each test
# left once it has passed, so a machine too slow for the suite ends the run with a report of
# what ran and how long it took, rather than being cut off with none.
DEADLINE_S = float(os.environ.get("HYPERSEG_TEST_DEADLINE_S") or "inf")
_STARTED = time.monotonic()


def pytest_runtest_setup(item):
    if time.monotonic() - _STARTED > DEADLINE_S:
        pytest.fail(f"not run: the run's deadline (HYPERSEG_TEST_DEADLINE_S={DEADLINE_S:.0f} s) has passed",
                    pytrace=False)


# A test stuck in C code that holds the GIL (Fast DDS can wait so while it destroys a participant,
# docs/TESTING.md) is beyond pytest-timeout's signal. Past that timeout plus 2 minutes,
# faulthandler, which needs no GIL, writes every thread's stack to HANG_REPORT and ends the run
# (.ci/run prints the report).
HANG_REPORT = ROOT / "build" / f"test-hang-{os.getpid()}.txt"
HANG_GRACE_S = float(os.environ.get("HYPERSEG_HANG_GRACE_S") or 120)  # the watchdog's own test sets it short


@pytest.fixture(autouse=True)
def _hang_watchdog(request):
    timeout = request.config.getoption("timeout", None)
    if not timeout:
        yield
        return
    HANG_REPORT.parent.mkdir(exist_ok=True)
    with open(HANG_REPORT, "w") as report:
        limit_s = float(timeout) + HANG_GRACE_S
        report.write(f"{request.node.nodeid} did not end within {limit_s:.0f} s; its threads:\n")
        report.flush()
        faulthandler.dump_traceback_later(limit_s, exit=True, file=report)
        try:
            yield
        finally:
            faulthandler.cancel_dump_traceback_later()
    HANG_REPORT.unlink(missing_ok=True)


EMBEDDED_MODEL = ROOT / "models" / "hyperseg-world"
TEST_MODEL_SIZE = "tiny"
TEST_MODEL_SEED = 0


def save_test_model(path: Path, size: str = TEST_MODEL_SIZE, seed: int = TEST_MODEL_SEED) -> Path:
    """Save a HyperSeg of `size` with seeded random weights and a word tokenizer to `path`."""
    import torch

    from hyperseg_ros.model.config import HyperSegConfig
    from hyperseg_ros.model.hyperseg import HyperSeg
    from hyperseg_ros.model.tokenizer import build_word_tokenizer

    torch.manual_seed(seed)
    config = HyperSegConfig.from_size(size, default_categories=["circle", "square", "triangle", "star"])
    words = ["red green blue yellow orange purple white black circle square triangle star hexagon ring "
             "cross heart small large left right top bottom shape"]
    tokenizer = build_word_tokenizer(words)
    HyperSeg(config).eval().save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path


@pytest.fixture(scope="session")
def model_dir(tmp_path_factory) -> Path:
    """The model the node and stream tests run: the embedded default once it is trained and
    committed (models/hyperseg-world/), otherwise a seeded random `tiny` model in a tmp dir."""
    if (EMBEDDED_MODEL / "config.json").is_file():
        return EMBEDDED_MODEL
    return save_test_model(tmp_path_factory.mktemp("model") / "hyperseg-tiny")


@pytest.fixture(scope="session")
def whisper_model_dir(tmp_path_factory) -> Path:
    """A tiny random-weight Whisper checkpoint (engine whisper), saved as a real one is."""
    from tiny_whisper import save_tiny_whisper

    return save_tiny_whisper(tmp_path_factory.mktemp("whisper") / "whisper-tiny-random")


# A ROS_DOMAIN_ID set by the user (`ROS_DOMAIN_ID=42 make test`) holds every node and client of
# the run. Unset, each test gets its own DDS domain (1..100); the start depends on the pid so that
# pytest runs of several people on one machine rarely meet.
USER_DOMAIN_ID = os.environ.get("ROS_DOMAIN_ID") or None
_domain_ids = itertools.count(os.getpid() * 7)


def ros_environment(log_dir: Path, user_domain_id: str | None = USER_DOMAIN_ID) -> dict[str, str]:
    """Environment for ROS processes: the user's DDS domain or one of their own, localhost
    discovery, logs under `log_dir`, the shared-memory Fast DDS profile, the source tree importable."""
    from hyperseg_ros.fastdds import use_shm_profile

    env = dict(os.environ)
    env.update(
        ROS_DOMAIN_ID=user_domain_id or str(next(_domain_ids) % 100 + 1),
        ROS_AUTOMATIC_DISCOVERY_RANGE="LOCALHOST",
        ROS_LOG_DIR=str(log_dir),
        PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
        PYTHONUNBUFFERED="1",
    )
    use_shm_profile(env)
    return env


@pytest.fixture
def make_ros_environment():
    """ros_environment itself, for the tests of how a domain is chosen."""
    return ros_environment


# What the test process itself needs of a ROS environment (set before its rclpy context is created).
ROS_PROCESS_KEYS = ("ROS_DOMAIN_ID", "ROS_AUTOMATIC_DISCOVERY_RANGE", "ROS_LOG_DIR", "FASTDDS_DEFAULT_PROFILES_FILE")


@pytest.fixture(scope="session")
def dds_check(tmp_path_factory) -> str | None:
    """None when two processes of this machine talk over DDS as the tests' processes do; else why
    not, with the same probe under Fast DDS's defaults and the state of /dev/shm."""
    from dds_probe import machine_report, probe

    env = ros_environment(tmp_path_factory.mktemp("dds_probe"))
    ok, printed = probe(env)
    if ok:
        return None
    defaults = {k: v for k, v in env.items() if k != "FASTDDS_DEFAULT_PROFILES_FILE"}
    ok_defaults, printed_defaults = probe(defaults)
    return (f"two processes do not talk over DDS here (a String on localhost, domain {env['ROS_DOMAIN_ID']}, "
            f"the shipped Fast DDS profile):\n{printed}\nwith Fast DDS's default transports: "
            + ("they do" if ok_defaults else f"they do not either:\n{printed_defaults}")
            + "\n" + machine_report(env))


@pytest.fixture
def ros_env(tmp_path, monkeypatch, dds_check) -> dict[str, str]:
    """ros_environment of one test (its own domain id, logs under tmp); the test process gets the
    same variables. Fails at once where DDS between processes does not work (`dds_check`)."""
    if dds_check:
        pytest.fail(dds_check, pytrace=False)
    env = ros_environment(tmp_path / "roslog")
    for key in ROS_PROCESS_KEYS:
        monkeypatch.setenv(key, env[key])
    return env


@pytest.fixture(scope="class")
def class_ros_env(tmp_path_factory) -> dict[str, str]:
    """ros_env shared by the tests of a class (one node process serving several checks)."""
    env = ros_environment(tmp_path_factory.mktemp("roslog"))
    with pytest.MonkeyPatch.context() as mp:
        for key in ROS_PROCESS_KEYS:
            mp.setenv(key, env[key])
        yield env
