"""`ROS_DOMAIN_ID=42 make test`: every node and client of the run is in domain 42.

The outer test runs the probe below in a pytest of its own started with ROS_DOMAIN_ID=42; the
probe starts a node the way every ROS test does and checks the domain of both ends.
"""
import os
import subprocess
import sys

import psutil
import pytest
from live_node import ROOT

PROBE = "HYPERSEG_DOMAIN_PROBE"


@pytest.mark.skipif(not os.environ.get(PROBE), reason="run by test_a_set_ros_domain_id_holds_nodes_and_clients")
def test_probe_node_and_client_in_the_users_domain(start_node, client, ros_env):
    wanted = os.environ[PROBE]
    node = start_node()
    client.wait_for_node(node)  # matched: both ends are in one domain
    assert ros_env["ROS_DOMAIN_ID"] == os.environ["ROS_DOMAIN_ID"] == wanted
    assert psutil.Process(node.proc.pid).environ()["ROS_DOMAIN_ID"] == wanted


def test_a_set_ros_domain_id_holds_nodes_and_clients(tmp_path):
    env = dict(os.environ, ROS_DOMAIN_ID="42", **{PROBE: "42"})
    run = subprocess.run([sys.executable, "-P", "-m", "pytest", "-q", "-p", "no:cacheprovider",
                          f"{__file__}::test_probe_node_and_client_in_the_users_domain"],
                         env=env, cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert run.returncode == 0 and "1 passed" in run.stdout, run.stdout[-3000:] + run.stderr[-2000:]
