"""The node process shell (node_process.py): SIGUSR1 prints every thread's stack and the process goes on."""
import subprocess
import sys

SCRIPT = """
import os, signal, threading
from hyperseg_ros.node_process import stop_on_signals
stop_on_signals()
threading.Thread(target=threading.Event().wait, args=(30,), name="worker", daemon=True).start()
os.kill(os.getpid(), signal.SIGUSR1)
print("still running")
"""


def test_sigusr1_dumps_every_thread_and_the_process_goes_on():
    done = subprocess.run([sys.executable, "-P", "-c", SCRIPT], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "still running"
    assert "Current thread 0x" in done.stderr  # the main thread, where the signal arrived
    assert "\nThread 0x" in "\n" + done.stderr and "in wait" in done.stderr  # and the waiting worker
