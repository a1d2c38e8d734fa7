"""Fixtures for the node tests: every test gets its own ROS_DOMAIN_ID (`ros_env`), localhost
discovery, logs under tmp and the shipped shared-memory Fast DDS profile."""
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
from live_node import Client, NodeProcess  # noqa: E402


@pytest.fixture
def start_node(ros_env, model_dir, tmp_path):
    """start_node(**params) -> a running NodeProcess; stopped with SIGINT at teardown, which
    must end it cleanly (exit code 0)."""
    started: list[NodeProcess] = []

    def start(**params) -> NodeProcess:
        params = {"model_path": str(model_dir), "num_threads": 1, "device": "cpu", **params}
        node = NodeProcess(ros_env, tmp_path / f"node{len(started)}.log", params)
        started.append(node)
        return node

    yield start
    for node in started:
        code = node.stop()
        assert code == 0, f"node did not shut down cleanly ({code}):\n{node.log()[-4000:]}"


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
