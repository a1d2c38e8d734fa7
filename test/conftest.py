"""Shared fixtures: the source tree on sys.path, the model directory the tests run, ROS isolation.

Tests run as `python -P -m pytest` (ros2-on-pypi.md G7), so the repository root is not on
sys.path; it is put first here so the source tree's `hyperseg_ros` is imported, with the
generated `hyperseg_ros.msg` merged in from the installed copy by `pkgutil.extend_path`.
"""
from __future__ import annotations

import itertools
import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))



def pytest_configure(config):
    # rclpy's node creation imports lark, which imports the deprecated sre_parse (G6)
    config.addinivalue_line("filterwarnings", "ignore:module 'sre_:DeprecationWarning")


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


@pytest.fixture
def ros_env(tmp_path, monkeypatch) -> dict[str, str]:
    """ros_environment of one test (its own domain id, logs under tmp); the test process gets the
    same variables."""
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
