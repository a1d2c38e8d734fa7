"""Import the source tree's `hyperseg_ros` (not the copy installed into .venv by cmake --install)."""
import sys
from pathlib import Path

_ROOT = str(Path(__file__).resolve().parents[2])
if _ROOT not in sys.path:
    sys.path.insert(0, _ROOT)
