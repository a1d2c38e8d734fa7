"""The speech node with engine whisper as a real process, on the tiny random-weight checkpoint of
test/tiny_whisper.py: an utterance gives a Transcript, and its text on `command` once accepted; with
no whisper_model_path, configure fails with one line naming it."""
import sys

import numpy as np
from hyperseg_ros.msg import AudioChunk, Transcript
from live_node import NAMESPACE, Process, failed_start, header
from std_msgs.msg import String

from hyperseg_ros.qos import reliable
from hyperseg_ros.speech.pipeline import wav_chunks


def start_speech(ros_env, tmp_path, **params):
    overrides = [a for k, v in params.items() for a in ("-p", f"{k}:={v}")]
    env = dict(ros_env, HF_HUB_OFFLINE="1", OMP_NUM_THREADS="1")
    return Process([sys.executable, "-P", "-m", "hyperseg_ros.speech_node", "--ros-args", *overrides,
                    "-r", f"__ns:={NAMESPACE}"], env, tmp_path / "speech.log")


def test_whisper_engine_publishes_a_transcript_and_the_accepted_command(ros_env, tmp_path, client, whisper_model_dir):
    audio_pub = client.node.create_publisher(AudioChunk, "audio", reliable(100))
    transcripts, commands = [], []
    client.node.create_subscription(Transcript, "speech/transcript", transcripts.append, reliable(10))
    client.node.create_subscription(String, "command", commands.append, reliable(10))
    # min_confidence 0: the random model is never sure, and the accepted path is the one to see
    proc = start_speech(ros_env, tmp_path, engine="whisper", whisper_model_path=whisper_model_dir, min_confidence=0.0)
    try:
        client.spin_until(lambda: audio_pub.get_subscription_count() > 0, 120, "the speech node's audio subscription",
                          proc)
        t = np.arange(16000) / 16000
        rng = np.random.default_rng(0)
        burst = 0.3 * np.sin(2 * np.pi * 220 * t) + 0.05 * rng.standard_normal(16000)
        x = np.concatenate([np.zeros(8000), burst, np.zeros(16000)]).astype(np.float32)
        for i, chunk in enumerate(wav_chunks(x, 16000)):
            audio_pub.publish(AudioChunk(header=header(i, frame_id="mic", period_ns=100_000_000), sample_rate=16000,
                                         channels=1, encoding="S16LE", data=chunk))
        client.spin_until(lambda: transcripts, 60, "a transcript", proc)
        client.spin_until(lambda: commands, 30, "the accepted command", proc)
        (said,) = transcripts
        assert said.text and said.accepted and 0 < said.confidence <= 1 and said.header.frame_id == "mic"
        assert [m.data for m in commands] == [said.text]
        proc.assert_alive()
    finally:
        assert proc.stop() == 0, proc.log()[-3000:]


def test_whisper_without_a_model_path_fails_configure_naming_the_parameter(ros_env, tmp_path):
    code, failed, log = failed_start(start_speech(ros_env, tmp_path, engine="whisper"))
    assert code == 1, log
    assert len(failed) == 1 and "whisper_model_path" in failed[0] and "Traceback" not in log, log
