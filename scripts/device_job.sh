#!/usr/bin/env bash
# One prepared call for a lent GPU machine (hyperseg_ros/training/device_job.py says what it does):
#
#   bash scripts/device_job.sh                   # there: python3 (torch + transformers preinstalled), results under $OUT
#   OUT=/tmp/dj bash scripts/device_job.sh --smoke   # here: every phase on the CPU in a few minutes
#
# Options pass through to the job: --budget-s S (total wall budget; default 570 s, under the
# machine's 10-minute limit per command; also $DEVICE_JOB_BUDGET_S), --device D.
# The interpreter: $DEVICE_JOB_PYTHON if set; else python3 on the GPU machine; else, for --smoke, a
# side venv build/device-venv with the GPU machine's transformers 5.17.0 over the project venv's
# torch (made once, from $VENV, default .venv), or, where that cannot be made, the project venv's
# python (the report notes which).
set -uo pipefail
cd "$(dirname "$0")/.."

smoke=0
for arg in "$@"; do [ "$arg" = "--smoke" ] && smoke=1; done
OUT=${OUT:-}
if [ -z "$OUT" ]; then
  OUT=out/device_job
  echo "device_job: OUT is not set; results go to $OUT"
fi
mkdir -p "$OUT"

TRANSFORMERS_PIN=5.17.0   # the GPU machine's (its python3: 3.12, torch 2.11, transformers 5.17)
HUB_PIN=1.33.0
SIDE=${DEVICE_JOB_SIDE_VENV:-build/device-venv}
VENV=${VENV:-.venv}
note=""

side_venv_ok() {
  "$SIDE/bin/python" -P -c "import sys, torch, transformers; sys.exit(transformers.__version__ != '$TRANSFORMERS_PIN')" \
    >/dev/null 2>&1
}

make_side_venv() {  # pure-Python transformers over the project venv's torch (a .pth to its site-packages)
  local base="$VENV/bin/python" purelib
  [ -x "$base" ] || { echo "no $base"; return 1; }
  rm -rf "$SIDE"
  "$base" -m venv "$SIDE" || return 1
  "$SIDE/bin/python" -m pip install -q --disable-pip-version-check --timeout 20 --retries 1 --no-deps \
    "transformers==$TRANSFORMERS_PIN" "huggingface_hub==$HUB_PIN" "httpx<1" "httpcore<2" certifi || return 1
  purelib=$("$base" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])') || return 1
  # written after the install, so pip never sees (nor touches) the project venv's packages
  echo "$purelib" > "$("$SIDE/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')/zz-project-venv.pth"
}

PY=${DEVICE_JOB_PYTHON:-}
if [ -n "$PY" ]; then
  note="interpreter from DEVICE_JOB_PYTHON: $PY"
elif [ $smoke = 1 ]; then
  if side_venv_ok || { echo "device_job: making $SIDE (transformers $TRANSFORMERS_PIN)"; make_side_venv && side_venv_ok; }; then
    PY=$SIDE/bin/python
    note="smoke in $SIDE: transformers $TRANSFORMERS_PIN (the GPU machine's) over the project venv's torch"
  else
    PY=$VENV/bin/python
    [ -x "$PY" ] || PY=python3
    note="smoke: $SIDE with transformers $TRANSFORMERS_PIN could not be made; ran with $PY (its own transformers)"
    echo "device_job: $note"
  fi
else
  PY=python3
fi

export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 \
  TQDM_MININTERVAL=${TQDM_MININTERVAL:-10} DEVICE_JOB_NOTE="$note"
# Each phase is a fresh process: compiled bytecode kept in build/pycache (not in any venv) spares
# every later one the ~8 s of compiling transformers again on a small CPU.
unset PYTHONDONTWRITEBYTECODE
export PYTHONPYCACHEPREFIX=${PYTHONPYCACHEPREFIX:-$PWD/build/pycache}
"$PY" -P -m hyperseg_ros.training.device_job --out "$OUT" --python "$PY" "$@" 2>&1 | tee "$OUT/job.log"
rc=${PIPESTATUS[0]}

# job.log comes back only under 16 MiB: keep its head and tail
max=$((15 * 1024 * 1024))
size=$(stat -c %s "$OUT/job.log" 2>/dev/null || echo 0)
if [ "$size" -gt "$max" ]; then
  { head -c $((max / 2)); printf '\n... (%s bytes cut) ...\n' "$((size - max))"; tail -c $((max / 2)); } \
    < "$OUT/job.log" > "$OUT/job.log.cut" && mv "$OUT/job.log.cut" "$OUT/job.log"
fi
exit "$rc"
