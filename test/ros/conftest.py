"""Fixtures for the node tests: every test gets its own ROS_DOMAIN_ID (`ros_env`), localhost
discovery, logs under tmp and the shipped shared-memory Fast DDS profile."""
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
from live_node import Client, started_nodes  # noqa: E402


@pytest.fixture
def start_node(ros_env, model_dir, tmp_path):
    """start_node(**params) -> a running NodeProcess; stopped with SIGINT at teardown, which
    must end it cleanly (exit code 0)."""
    yield from started_nodes(ros_env, model_dir, tmp_path)


@pytest.fixture
def client(ros_env):
    c = Client()
    yield c
    c.close()


@pytest.fixture
def reliable_client(ros_env):
    c = Client(image_reliable=True)
    yield c
    c.close()
