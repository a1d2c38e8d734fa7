#!/usr/bin/env bash
# One idempotent set-up: .venv with pinned wheels, msg/ built by rosidl and installed into it
# together with the Python package. A second run skips what is already up to date.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
VENV=${VENV:-$ROOT/.venv}
BUILD=${BUILD:-$ROOT/build}
PYTHON=${PYTHON:-python3.11}
UV_VERSION=0.13.8
FIND_LINKS=${PIP_FIND_LINKS:-$(pip config get global.find-links 2>/dev/null || true)}
[ -n "$FIND_LINKS" ] || FIND_LINKS=/opt/wheels

# System packages a fresh Debian/Ubuntu may lack: a compiler and cmake for the msg build, venv support.
missing=()
command -v cmake >/dev/null 2>&1 || missing+=(cmake)
command -v g++ >/dev/null 2>&1 || missing+=(g++)
"$PYTHON" -c "import ensurepip, venv" >/dev/null 2>&1 || missing+=("$(basename "$PYTHON")-venv")
if [ ${#missing[@]} -gt 0 ]; then
  echo "== installing system packages: ${missing[*]}"
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO=sudo
  $SUDO apt-get update -qq && $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
fi
# espeak-ng speaks the speech tests' sentences; without it those tests skip, so a failure is not fatal
if ! command -v espeak-ng >/dev/null 2>&1; then
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO=sudo
  { $SUDO apt-get update -qq && $SUDO apt-get install -y -qq espeak-ng >/dev/null; } \
    || echo "== espeak-ng could not be installed: the speech tests that speak sentences will skip"
fi
[ -x "$VENV/bin/python" ] || "$PYTHON" -m venv "$VENV"

req_sum=$(cat "$ROOT/requirements.txt" "$ROOT/requirements-test.txt" | sha256sum | cut -d' ' -f1)
if [ "$(cat "$VENV/.requirements.sha256" 2>/dev/null)" != "$req_sum" ]; then
  echo "== installing pinned wheels into $VENV"
  # pip warns about each configured index that lacks uv ("Location ... is ignored"): shown only on failure
  [ -x "$VENV/bin/uv" ] || "$VENV/bin/pip" install -q "uv==$UV_VERSION" >"$BUILD.uv.log" 2>&1 \
    || { cat "$BUILD.uv.log"; exit 1; }
  # uv ignores pip.conf: hand it the local torch wheel directory and the configured indexes.
  extra=()
  for idx in $(pip config get global.extra-index-url 2>/dev/null || true); do extra+=(--extra-index-url "$idx"); done
  "$VENV/bin/uv" pip install -q --python "$VENV/bin/python" --find-links "$FIND_LINKS" "${extra[@]}" \
      --index-strategy unsafe-best-match -r "$ROOT/requirements.txt" -r "$ROOT/requirements-test.txt"
  echo "$req_sum" > "$VENV/.requirements.sha256"
fi

# ROS 2 `launch`, `launch_ros` and the `ros2` CLI are not on PyPI. When ../shared/wheels holds them
# (pure-Python wheels, see its README), install them, --no-deps (their dependencies are named as
# in a ROS install, not as on PyPI), plus osrf-pycommon which they need. Skipped when every wheel is
# already installed at its version. Without the folder the launch tests skip (a system ROS has them).
ROS_CLI_WHEELS=${ROS_CLI_WHEELS:-$ROOT/../shared/wheels}
OSRF_PYCOMMON=osrf-pycommon==2.0.2
if compgen -G "$ROS_CLI_WHEELS/*.whl" >/dev/null; then
  if ! "$VENV/bin/python" -P - "$OSRF_PYCOMMON" "$ROS_CLI_WHEELS"/*.whl <<'EOF'
import sys
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
wanted = [tuple(sys.argv[1].split("=="))] + [tuple(Path(w).name.split("-")[:2]) for w in sys.argv[2:]]
try:
    sys.exit(any(version(name) != v for name, v in wanted))
except PackageNotFoundError:
    sys.exit(1)
EOF
  then
    echo "== installing ROS 2 launch and ros2 CLI wheels from $ROS_CLI_WHEELS"
    if [ -x "$VENV/bin/uv" ]; then
      "$VENV/bin/uv" pip install -q --python "$VENV/bin/python" --no-deps "$ROS_CLI_WHEELS"/*.whl "$OSRF_PYCOMMON"
    else
      "$VENV/bin/pip" install -q --no-deps "$ROS_CLI_WHEELS"/*.whl "$OSRF_PYCOMMON"
    fi
  fi
fi

export AMENT_PREFIX_PATH="$VENV"
if [ ! -f "$BUILD/CMakeCache.txt" ]; then
  echo "== configuring msg/ build"
  cmake -S "$ROOT" -B "$BUILD" -DCMAKE_INSTALL_PREFIX="$VENV" -DCMAKE_PREFIX_PATH="$VENV" \
    -DPython3_EXECUTABLE="$VENV/bin/python" -DBUILD_TESTING=OFF >"$BUILD.configure.log" 2>&1 \
    || { cat "$BUILD.configure.log"; exit 1; }
fi
cmake --build "$BUILD" -j"$(nproc)" >"$BUILD.build.log" 2>&1 || { tail -50 "$BUILD.build.log"; exit 1; }
cmake --install "$BUILD" >"$BUILD.install.log" 2>&1 || { tail -50 "$BUILD.install.log"; exit 1; }
"$VENV/bin/python" -P -c "import rclpy, torch; from hyperseg_ros.msg import Segmentation; print('hyperseg_ros ready:', torch.__version__)"
