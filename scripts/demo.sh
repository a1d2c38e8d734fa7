#!/usr/bin/env bash
# The demo a newcomer runs (`make demo`, after `make setup`): a procedural camera bag with spoken
# commands is played into the perception node (its own process, over DDS), what the node publishes
# is recorded, and an annotated video, a strip (one frame per command) and a summary are written
# under out/. Prints the video path last.
#
#   MODEL_PATH=dir   model directory for the node (default: the embedded models/hyperseg-world)
#   DEMO_SECONDS=4   length of the demo stream (15 Hz, 640x480)
#   DEMO_REALTIME=1  play with the bag's own timing (the node drops frames while busy) instead of
#                    lockstep (each frame waits for the node's answer, so every frame is shown)
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
OUT=${OUT:-$ROOT/out}
PY=("${VENV:-$ROOT/.venv}/bin/python" -P)
SECONDS_OF_DEMO=${DEMO_SECONDS:-4}
BAG=$OUT/demo_bag_${SECONDS_OF_DEMO}s
RECORDED=$OUT/demo_segmentation
mkdir -p "$OUT"

export PYTHONPATH=$ROOT${PYTHONPATH:+:$PYTHONPATH}
export ROS_DOMAIN_ID=${ROS_DOMAIN_ID:-73}
export ROS_AUTOMATIC_DISCOVERY_RANGE=${ROS_AUTOMATIC_DISCOVERY_RANGE:-LOCALHOST}
export ROS_LOG_DIR=$OUT/roslog

bag() { "${PY[@]}" -m hyperseg_ros.bag -q "$@"; }

if [ ! -f "$BAG/metadata.yaml" ] || ! grep -q ground_truth "$BAG/metadata.yaml"; then  # older bags lack it
  echo "== making the demo bag $BAG"
  rm -rf "$BAG"
  bag make-demo "$BAG" --seconds "$SECONDS_OF_DEMO" > "$OUT/demo_bag.json"
fi
frames=$("${PY[@]}" -c "import sys; from hyperseg_ros.bag.storage import message_counts; \
print(message_counts(sys.argv[1])['/camera/image_raw'])" "$BAG")

pids=()
# SIGTERM, not SIGINT: background jobs of a script ignore SIGINT
cleanup() { for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done; wait 2>/dev/null || true; }
trap cleanup EXIT

echo "== starting the perception node (log: $OUT/node.log)"
node_args=(--ros-args --params-file "$ROOT/config/perception.yaml" -p image_reliability:=reliable
           -r image:=/camera/image_raw)
[ -n "${MODEL_PATH:-}" ] && node_args+=(-p "model_path:=$MODEL_PATH")
"${PY[@]}" -m hyperseg_ros.perception_node "${node_args[@]}" > "$OUT/node.log" 2>&1 &
node_pid=$!
pids+=("$node_pid")

for _ in $(seq 360); do  # the node imports torch and loads the model before it subscribes
  grep -q "serving" "$OUT/node.log" && break
  kill -0 "$node_pid" 2>/dev/null || { echo "the node exited; its log:" >&2; tail -30 "$OUT/node.log" >&2; exit 1; }
  sleep 0.5
done

rm -rf "$RECORDED" "$OUT/record.ready"
bag record "$RECORDED" --topics /segmentation --count "$frames" --wait 60 --idle-timeout 60 \
  --ready-file "$OUT/record.ready" > "$OUT/record.json" &
record_pid=$!
pids+=("$record_pid")
for _ in $(seq 120); do  # the node answers the first frame at once: the recorder must hear it
  [ -f "$OUT/record.ready" ] && break
  kill -0 "$record_pid" 2>/dev/null || break
  sleep 0.5
done

# the bag's ground_truth topic is for the report, not for the node
play_args=(--wait-for-subscribers 180 --topics /camera/image_raw /command /segmentation_command)
[ "${DEMO_REALTIME:-0}" = 1 ] || play_args+=(--lockstep /segmentation)
echo "== playing $frames frames into the node ($([ "${DEMO_REALTIME:-0}" = 1 ] && echo real time || echo lockstep))"
if ! bag play "$BAG" "${play_args[@]}" > "$OUT/play.json"; then
  echo "play failed; node log:" >&2; tail -30 "$OUT/node.log" >&2; exit 1
fi
# with real-time play the last answers arrive after the player is done: the recorder stops on idle
wait "$record_pid" || true

echo "== writing the video and the summary"
bag report "$BAG" --segmentation-bag "$RECORDED" --video "$OUT/demo.mp4" --summary "$OUT/demo_summary.json" \
  --strip "$OUT/demo_strip.png" > /dev/null
cat "$OUT/demo_summary.md"
echo "one frame per command: $OUT/demo_strip.png"
echo "$OUT/demo.mp4"
