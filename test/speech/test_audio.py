"""Chunk decoding, streaming resampling and voice activity, without ROS."""
import numpy as np
import pytest

from hyperseg_ros.speech.audio import AudioError, Resampler, decode_chunk, resample
from hyperseg_ros.speech.vad import VoiceActivity


def test_s16_stereo_is_mixed_to_mono():
    pcm = np.array([[1000, 3000], [-2000, 0]], "<i2").tobytes()
    d = decode_chunk(pcm, 16000, 2, "S16LE")
    assert np.allclose(d.samples, [2000 / 32768, -1000 / 32768]) and d.problems == []


@pytest.mark.parametrize("kwargs, reason", [
    (dict(encoding="MP3"), "rejected_encoding"), (dict(sample_rate=0), "rejected_rate"),
    (dict(channels=0), "rejected_channels"), (dict(data=b"\x01"), "rejected_empty")])
def test_unreadable_chunks_are_rejected_with_their_reason(kwargs, reason):
    args = dict(data=b"\x00\x00" * 10, sample_rate=16000, channels=1, encoding="S16LE") | kwargs
    with pytest.raises(AudioError) as err:
        decode_chunk(**args)
    assert err.value.reason == reason


def test_repairable_defects_are_named_and_repaired():
    d = decode_chunk(np.array([0.5, np.nan, np.inf, 0.1], "<f4").tobytes() + b"\x00", 16000, 1, "F32LE")
    assert d.problems == ["odd_length", "non_finite"] and np.all(np.isfinite(d.samples))
    clipped = decode_chunk(np.full(100, 32767, "<i2").tobytes(), 16000, 1, "S16LE")
    assert clipped.problems == ["clipped"]


@pytest.mark.parametrize("rate", [8000, 22050, 44100, 48000])
def test_chunked_resampling_equals_resampling_the_whole(rate):
    rng = np.random.default_rng(rate)
    x = (0.1 * rng.standard_normal(rate)).astype(np.float32)
    r, parts, i = Resampler(), [], 0
    while i < len(x):
        n = int(rng.integers(1, 2000))
        parts.append(r(x[i:i + n], rate))
        i += n
    y, whole = np.concatenate(parts + [r.flush()]), resample(x, rate)
    assert len(y) == len(whole) == 16000
    assert np.abs(y[100:-100] - whole[100:-100]).max() < 1e-5


@pytest.mark.parametrize("rate", [8000, 22050, 44100, 48000])
def test_resampled_output_lags_the_input_by_under_a_block_and_the_filters_reach(rate):
    """Latency from the end of speech to a command includes this lag: output is held back only for
    the block being filled and the filter's look-ahead (under 1 ms), not a whole block more."""
    rng = np.random.default_rng(rate)
    r, out, i = Resampler(), 0, 0
    while i < rate:
        n = int(rng.integers(1, 2000))
        out += len(r(np.zeros(n, np.float32), rate))
        i += n
        assert (i - out * rate / 16000) / rate < 0.0215, (i, out)  # a 20 ms block + the reach


def tone(seconds, level=0.3):
    t = np.arange(int(16000 * seconds)) / 16000
    return (level * np.sin(2 * np.pi * 300 * t)).astype(np.float32)


def test_utterances_are_cut_at_silence_and_minutes_of_silence_give_none():
    vad = VoiceActivity(end_silence_ms=250)
    quiet = np.zeros(16000 * 120, np.float32)  # two minutes of digital silence
    assert vad.push(quiet) == []
    out = vad.push(np.concatenate([tone(1.0), np.zeros(8000, np.float32), tone(0.5), np.zeros(8000, np.float32)]))
    assert len(out) == 2
    assert abs(len(out[0].samples) / 16000 - 1.45) < 0.1 and not out[0].forced_end
    assert abs(out[0].start_sample / 16000 - 120.0) < 0.25  # pre-roll before the tone's start


def test_endless_speech_is_cut_at_the_maximum_length():
    vad = VoiceActivity(max_utterance_s=2.0)
    out = vad.push(tone(5.0))
    assert [u.forced_end for u in out] == [True, True] and all(len(u.samples) <= 32000 for u in out)


def test_the_utterance_in_progress_can_be_read_as_it_grows_and_knows_where_speech_ended():
    vad = VoiceActivity(end_silence_ms=200, pre_roll_ms=100)
    assert vad.push(np.zeros(1600, np.float32)) == [] and vad.speech_since(0).size == 0
    vad.push(tone(0.5))
    grown = vad.speech_since(0)
    assert vad.in_speech and len(grown) == vad.samples_in_speech >= 8000
    assert np.array_equal(vad.speech_since(1600), grown[1600:])
    (u,) = vad.push(np.zeros(8000, np.float32))
    assert np.array_equal(u.samples[:len(grown)], grown)
    assert abs(u.speech_end - (1600 + 8000)) <= 160  # the tone's last frame
    assert len(u.samples) + u.start_sample - u.speech_end == 200 * 16  # then the end silence
