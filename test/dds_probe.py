"""Can two processes of this machine talk over DDS? One publishes a String, the other waits for it.

Run once per test session (`dds_check` in conftest.py) so that a machine where discovery or
transport is broken fails every ROS test at once with a diagnosis, instead of each test waiting
out its discovery timeout.

    python -P test/dds_probe.py talk|listen [seconds]
"""
from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

TOPIC = "/hyperseg_dds_probe"
LISTEN_S = 60.0


def _node(name: str):
    import rclpy

    rclpy.init()
    return rclpy, rclpy.create_node(name)


def talk() -> None:
    from std_msgs.msg import String

    rclpy, node = _node("hyperseg_dds_probe_talker")
    # until the probe's SIGTERM, which ends the process cleanly (its shared-memory files removed)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    pub = node.create_publisher(String, TOPIC, 10)
    try:
        while True:
            pub.publish(String(data="probe"))
            rclpy.spin_once(node, timeout_sec=0.1)
    finally:
        node.destroy_node()
        rclpy.try_shutdown()


def listen(listen_s: float) -> int:
    from std_msgs.msg import String

    rclpy, node = _node("hyperseg_dds_probe_listener")
    heard: list[str] = []
    node.create_subscription(String, TOPIC, lambda m: heard.append(m.data), 10)
    deadline = time.monotonic() + listen_s
    while not heard and time.monotonic() < deadline:
        rclpy.spin_once(node, timeout_sec=0.1)
    print("heard" if heard else f"nothing heard on {TOPIC} within {listen_s:.0f} s", flush=True)
    node.destroy_node()
    rclpy.try_shutdown()
    return 0 if heard else 1


def probe(env: dict[str, str], listen_s: float = LISTEN_S, listener_env: dict[str, str] | None = None) -> tuple[bool, str]:
    """Talker and listener as two processes in `env` (the listener in `listener_env` if given)
    -> (heard, what they printed)."""
    cmd = [sys.executable, "-P", str(Path(__file__).resolve())]
    talker = subprocess.Popen([*cmd, "talk"], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        listener = subprocess.run([*cmd, "listen", str(listen_s)], env=listener_env or env, capture_output=True,
                                  text=True, timeout=listen_s + 60)
        ok, out = listener.returncode == 0, listener.stdout + listener.stderr
    except subprocess.TimeoutExpired as e:
        ok, out = False, f"the listener did not end within {listen_s + 60:.0f} s: {e.output or ''}"
    finally:
        talker.terminate()
        try:
            talked = talker.communicate(timeout=30)[0]
        except subprocess.TimeoutExpired:
            talker.kill()
            talked = talker.communicate()[0]
    return ok, out + ("" if ok else f"\ntalker printed: {talked[-2000:]}")


def machine_report(env: dict[str, str]) -> str:
    """What a failing probe is read with: shared memory, and the DDS settings of `env`."""
    shm = shutil.disk_usage("/dev/shm") if os.path.isdir("/dev/shm") else None
    lines = [f"/dev/shm: {shm.free / 2**20:.0f} MiB free of {shm.total / 2**20:.0f} MiB, "
             f"{len(os.listdir('/dev/shm'))} entries" if shm else "/dev/shm: missing"]
    lines += [f"{k}={env.get(k, '')}" for k in
              ("ROS_DOMAIN_ID", "ROS_AUTOMATIC_DISCOVERY_RANGE", "FASTDDS_DEFAULT_PROFILES_FILE", "RMW_IMPLEMENTATION")]
    return "\n".join(lines)


if __name__ == "__main__":
    if sys.argv[1:] == ["talk"]:
        talk()
    elif sys.argv[1:2] == ["listen"]:
        sys.exit(listen(float(sys.argv[2]) if len(sys.argv) > 2 else LISTEN_S))
    else:
        sys.exit(__doc__)
