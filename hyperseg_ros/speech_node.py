"""The speech node `speech_command`: audio chunks -> transcripts -> `command` sentences.

    python -P -m hyperseg_ros.speech_node --ros-args -r __ns:=/robot

A thin lifecycle shell over `speech.pipeline.SpeechPipeline` (interface.md, "Speech"): configure
builds the recogniser and publishers, activate subscribes to `audio` (or opens the sound device:
`audio_source: microphone`) and starts the publishing
thread. The grammar engine decodes in the audio callback as audio comes (a few ms a chunk, so an
utterance is recognised a few ms after it ends); a whole-utterance engine decodes in that thread,
so audio callbacks never wait for it. Bad audio is counted in /diagnostics.
"""
from __future__ import annotations

import os
import signal

if __name__ == "__main__":  # a stop signal during the imports below ends it with 0 too
    for _sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(_sig, lambda *_: os._exit(0))

import queue  # noqa: E402
import threading  # noqa: E402
from typing import NoReturn  # noqa: E402

from builtin_interfaces.msg import Time  # noqa: E402
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue  # noqa: E402
from rclpy.lifecycle import LifecycleNode, LifecycleState, TransitionCallbackReturn  # noqa: E402
from std_msgs.msg import Header, String  # noqa: E402

from hyperseg_ros.msg import AudioChunk, Transcript  # noqa: E402
from hyperseg_ros.node_process import end_process, serve  # noqa: E402
from hyperseg_ros.qos import RELIABLE_10, reliable  # noqa: E402
from hyperseg_ros.speech import microphone  # noqa: E402
from hyperseg_ros.speech.audio import AudioError  # noqa: E402
from hyperseg_ros.speech.engines import make_recognizer  # noqa: E402
from hyperseg_ros.speech.pipeline import DEFAULT_END_SILENCE_MS, DEFAULT_MIN_CONFIDENCE, SpeechPipeline  # noqa: E402
from hyperseg_ros.throttle import PerKindThrottle  # noqa: E402

NODE_NAME = "speech_command"
SUCCESS, FAILURE = TransitionCallbackReturn.SUCCESS, TransitionCallbackReturn.FAILURE
PARAMETERS = {  # name -> (default, description)
    "engine": ("grammar", "grammar (embedded pocketsphinx over the command language) | whisper"),
    "whisper_model_path": ("", "a local Whisper model directory (engine whisper)"),
    "min_confidence": (DEFAULT_MIN_CONFIDENCE, "utterances at or above it are published on `command`"),
    "language": ("en", "the spoken language (the grammar engine speaks English only)"),
    "audio_source": ("topic", "topic (AudioChunk on `audio`) | microphone (the default sound device)"),
    "end_silence_ms": (DEFAULT_END_SILENCE_MS, "silence that ends an utterance"),
    "max_utterance_s": (10.0, "an utterance is cut at this length"),
    "idle_flush_s": (0.5, "no audio for this long ends the utterance in progress"),
    "autostart": (True, "configure and activate at start-up"),
    "diagnostics_period_s": (1.0, "period of /diagnostics"),
}


def _ns(stamp) -> int:
    return int(stamp.sec) * 1_000_000_000 + int(stamp.nanosec)


def _time(ns: int) -> Time:
    return Time(sec=ns // 1_000_000_000, nanosec=ns % 1_000_000_000)


class SpeechNode(LifecycleNode):
    def __init__(self, **kwargs):
        super().__init__(NODE_NAME, **kwargs)
        for name, (default, description) in PARAMETERS.items():
            self.declare_parameter(name, default)
        self.pipeline: SpeechPipeline | None = None
        self.throttle = PerKindThrottle(2.0)
        self._lock = threading.Lock()  # the pipeline's state: audio callbacks vs the idle timer
        self._work: queue.Queue = queue.Queue(maxsize=8)
        self._worker: threading.Thread | None = None
        self._audio_sub = None
        self._microphone = None  # the sound device's input stream (audio_source microphone)
        self._frame_id = ""
        self._last_audio = None
        self.diag_pub = self.create_publisher(DiagnosticArray, "/diagnostics", 10)
        self.create_timer(float(self.get_parameter("diagnostics_period_s").value), self._publish_diagnostics)
        self.create_timer(0.1, self._idle_flush)

    def p(self, name):
        return self.get_parameter(name).value

    def on_configure(self, state: LifecycleState) -> TransitionCallbackReturn:
        try:
            if self.p("audio_source") not in ("topic", "microphone"):
                raise ValueError(f"audio_source must be topic or microphone, not {self.p('audio_source')!r}")
            if self.p("audio_source") == "microphone":
                microphone.check()
            recognizer = make_recognizer(self.p("engine"), self.p("whisper_model_path"), self.p("language"))
        except Exception as err:  # noqa: BLE001 - one clear line, the transition fails (NoMicrophone too)
            self.get_logger().error(f"configure failed: {err}")
            return FAILURE
        self.pipeline = SpeechPipeline(recognizer, float(self.p("min_confidence")),
                                       end_silence_ms=int(self.p("end_silence_ms")),
                                       max_utterance_s=float(self.p("max_utterance_s")))
        self.command_pub = self.create_publisher(String, "command", RELIABLE_10)
        self.transcript_pub = self.create_publisher(Transcript, "speech/transcript", RELIABLE_10)
        return SUCCESS

    def on_activate(self, state: LifecycleState) -> TransitionCallbackReturn:
        if self.p("audio_source") == "microphone":
            try:
                self._microphone = microphone.open_stream(self._on_microphone)
            except Exception as err:  # noqa: BLE001 - the device went away since configure
                self.get_logger().error(f"activate failed: {err}")
                return FAILURE
        else:
            self._audio_sub = self.create_subscription(AudioChunk, "audio", self._on_audio, reliable(100))
        self._worker = threading.Thread(target=self._recognise_loop, daemon=True)
        self._worker.start()
        self.get_logger().info(f"serving; engine {self.p('engine')}, min_confidence {self.p('min_confidence')}")
        return super().on_activate(state)

    def on_deactivate(self, state: LifecycleState) -> TransitionCallbackReturn:
        self.close()
        return super().on_deactivate(state)

    def on_cleanup(self, state: LifecycleState) -> TransitionCallbackReturn:
        self.close()
        self.pipeline = None
        return SUCCESS

    def on_shutdown(self, state: LifecycleState) -> TransitionCallbackReturn:
        self.close()
        return SUCCESS

    def close(self) -> None:
        if self._microphone is not None:
            self._microphone.close()
            self._microphone = None
        if self._audio_sub is not None:
            self.destroy_subscription(self._audio_sub)
            self._audio_sub = None
        if self._worker is not None:
            self._work.put(None)
            self._worker.join()
            self._worker = None

    def _warn(self, kind: str, text: str) -> None:
        held = self.throttle.allow(kind)
        if held is not None:
            self.get_logger().warning(text + (f" ({held} more held back)" if held else ""))

    def _on_audio(self, msg: AudioChunk) -> None:
        self._take(msg.data, msg.sample_rate, msg.channels, msg.encoding, _ns(msg.header.stamp), msg.header.frame_id)

    def _on_microphone(self, data: bytes, rate: int, stamp_ns: int) -> None:  # PortAudio's thread
        self._take(data, rate, 1, "S16LE", stamp_ns, "microphone")

    def _take(self, data, rate: int, channels: int, encoding: str, stamp_ns: int, frame_id: str) -> None:
        if self.pipeline is None:
            return
        with self._lock:
            try:
                done = self.pipeline.push(data, rate, channels, encoding, stamp_ns)
            except AudioError as err:
                self._warn(err.reason, f"audio chunk rejected: {err}")
                return
            except Exception as err:  # noqa: BLE001 - no chunk may stop the node
                self.pipeline.counts["rejected_error"] += 1
                self._warn("error", f"audio chunk failed: {err!r}")
                return
            self._frame_id = frame_id
            self._last_audio = self.get_clock().now()
            self._queue(done)

    def _idle_flush(self) -> None:
        if self.pipeline is None or self._last_audio is None:
            return
        if (self.get_clock().now() - self._last_audio).nanoseconds > self.p("idle_flush_s") * 1e9:
            with self._lock:
                self._last_audio = None
                self._queue(self.pipeline.flush())

    def _queue(self, utterances) -> None:
        for u in utterances:
            try:
                self._work.put_nowait((u, self.pipeline.stamp_of(u), self._frame_id))
            except queue.Full:
                self.pipeline.counts["utterances_dropped_busy"] += 1

    def _recognise_loop(self) -> None:
        while (item := self._work.get()) is not None:
            u, stamp_ns, frame_id = item
            try:
                t = self.pipeline.transcribe(u, stamp_ns)
            except Exception as err:  # noqa: BLE001
                self.pipeline.counts["recogniser_errors"] += 1
                self._warn("recogniser", f"recogniser failed: {err!r}")
                continue
            rec = t.recognition
            if t.accepted:
                self.command_pub.publish(String(data=rec.text))
            self.transcript_pub.publish(Transcript(
                header=Header(stamp=_time(stamp_ns), frame_id=frame_id), text=rec.text,
                confidence=float(rec.confidence), accepted=t.accepted, alternatives=list(rec.alternatives)))

    def _publish_diagnostics(self) -> None:
        counts = dict(self.pipeline.counts) if self.pipeline is not None else {}
        bad = sum(v for k, v in counts.items() if k.startswith("rejected_") or k in ("odd_length", "non_finite",
                                                                                     "clipped"))
        status = DiagnosticStatus(
            level=DiagnosticStatus.WARN if bad else DiagnosticStatus.OK, name=f"{self.get_name()}: speech",
            hardware_id=self.p("engine"), message=f"{bad} bad audio chunks" if bad else "ok",
            values=[KeyValue(key="engine", value=str(self.p("engine")))]
            + [KeyValue(key=k, value=str(v)) for k, v in sorted(counts.items())])
        self.diag_pub.publish(DiagnosticArray(header=Header(stamp=self.get_clock().now().to_msg()), status=[status]))

    def start(self) -> bool:
        return self.trigger_configure() == SUCCESS and self.trigger_activate() == SUCCESS


def main(args=None) -> NoReturn:
    """Entry point of `speech_command` and `python -m hyperseg_ros.speech_node`."""
    end_process(serve(SpeechNode, "speech_command", args))


if __name__ == "__main__":
    raise SystemExit(main())
