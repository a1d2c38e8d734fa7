#!/usr/bin/env bash
# The demo a newcomer runs (`make demo`, after `make setup`): a procedural camera bag with an
# operator's commands is played into the perception node (its own process, over DDS), what the node
# publishes is recorded, and an annotated video, a strip (one frame per command) and a summary are
# written under out/. Prints the video path last. The first command is spoken (espeak-ng's voice in
# the bag on /audio) and reaches the perception node through the speech node `speech_command`; the
# video shows what it heard. Without espeak-ng that command is typed instead.
#
#   MODEL_PATH=dir   model directory for the node (default: the embedded models/hyperseg-world)
#   DEMO_SECONDS=4   length of the demo stream (15 Hz, 640x480)
#   DEMO_REALTIME=1  play with the bag's own timing (the node drops frames while busy) instead of
#                    lockstep (each frame waits for the node's answer, so every frame is shown)
#   DEMO_SPEECH=0    type the first command instead of speaking it
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
OUT=${OUT:-$ROOT/out}
PY=("${VENV:-$ROOT/.venv}/bin/python" -P)
SECONDS_OF_DEMO=${DEMO_SECONDS:-4}
SPEAK=${DEMO_SPEECH:-1}
if [ "$SPEAK" = 1 ] && ! command -v espeak-ng >/dev/null 2>&1; then
  echo "== espeak-ng is not installed: the first command is typed, not spoken"
  SPEAK=0
fi
BAG=$OUT/demo_bag_${SECONDS_OF_DEMO}s$([ "$SPEAK" = 1 ] && echo _spoken)
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
  make_args=(--seconds "$SECONDS_OF_DEMO")
  [ "$SPEAK" = 1 ] && make_args+=(--speak en-us)
  bag make-demo "$BAG" "${make_args[@]}" > "$OUT/demo_bag.json"
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

record_topics=(/segmentation)
if [ "$SPEAK" = 1 ]; then
  echo "== starting the speech node (log: $OUT/speech.log)"
  "${PY[@]}" -m hyperseg_ros.speech_node > "$OUT/speech.log" 2>&1 &
  pids+=("$!")
  record_topics+=(/speech/transcript)
fi

rm -rf "$RECORDED" "$OUT/record.ready"
bag record "$RECORDED" --topics "${record_topics[@]}" --count "$frames" --wait 60 --idle-timeout 60 \
  --ready-file "$OUT/record.ready" > "$OUT/record.json" &
record_pid=$!
pids+=("$record_pid")
for _ in $(seq 120); do  # the node answers the first frame at once: the recorder must hear it
  [ -f "$OUT/record.ready" ] && break
  kill -0 "$record_pid" 2>/dev/null || break
  sleep 0.5
done

# the bag's ground_truth topic is for the report, not for the node; spoken, the first command
# goes as audio to the speech node, which sends the node what it heard
play_args=(--wait-for-subscribers 180 --topics /camera/image_raw /segmentation_command)
if [ "$SPEAK" = 1 ]; then play_args+=(/audio); else play_args+=(/command); fi
[ "${DEMO_REALTIME:-0}" = 1 ] || play_args+=(--lockstep /segmentation --lockstep-speech /speech/transcript)
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
