"""`hyperseg_bag make-demo`: a deterministic camera bag with the four scripted commands."""
from __future__ import annotations

import numpy as np
import pytest

from hyperseg_ros import image_codec, mask_rle
from hyperseg_ros.bag import main, storage
from hyperseg_ros.bag.make_demo import make_demo


def _messages(path):
    # compared as messages: rclpy's CDR serializer leaves alignment padding bytes uninitialised
    return [(r.topic, r.timestamp, r.message()) for r in storage.read(path)]


def test_same_seed_same_bag_and_script(tmp_path):
    a = make_demo(tmp_path / "a", seconds=1.0, fps=15, size=(160, 120), seed=11)
    b = make_demo(tmp_path / "b", storage="sqlite3", seconds=1.0, fps=15, size=(160, 120), seed=11)
    assert _messages(tmp_path / "a") == _messages(tmp_path / "b")
    assert a.commands == b.commands
    assert _messages(tmp_path / "a") != _messages(make_demo(tmp_path / "c", seconds=1.0, size=(160, 120),
                                                            seed=12).output)


def test_stream_and_commands(tmp_path):
    info = make_demo(tmp_path / "demo", seconds=2.0, fps=15, size=(320, 240), seed=4)
    assert storage.topics(tmp_path / "demo") == {
        "/camera/image_raw": "sensor_msgs/msg/Image", "/command": "std_msgs/msg/String",
        "/segmentation_command": "hyperseg_ros/msg/SegmentationCommand",
        "/ground_truth": "hyperseg_ros/msg/Segmentation"}
    records = list(storage.read(tmp_path / "demo"))
    images = [r.message() for r in records if r.topic == "/camera/image_raw"]
    assert len(images) == info.frames == 30
    stamps = [storage.stamp_ns(m.header) for m in images]
    assert np.allclose(np.diff(stamps), 1e9 / 15, atol=1)
    assert all((m.width, m.height, m.encoding, m.header.frame_id) == (320, 240, "rgb8", "camera") for m in images)
    assert image_codec.image_to_rgb(images[0]).std() > 5  # a drawn scene, not a blank frame

    assert [c["task"] for c in info.commands] == ["referring", "reasoning", "open_vocabulary", "visual_prompt"]
    assert [c["frame"] for c in info.commands] == [0, 8, 15, 22]
    commands = [r for r in records if r.topic not in ("/camera/image_raw", "/ground_truth")]
    assert [r.topic for r in commands] == ["/command"] + ["/segmentation_command"] * 3
    text = commands[0].message().data
    assert text == info.commands[0]["text"] and text.strip()
    reasoning, vocabulary, prompt = (r.message() for r in commands[1:])
    assert reasoning.task == "reasoning" and reasoning.text and reasoning.id == "demo-2"
    assert vocabulary.task == "open_vocabulary" and 1 <= len(vocabulary.categories) <= 8
    assert prompt.task == "visual_prompt" and len(prompt.boxes) == 1
    # each command sits just before the frame it is about; a box prompt carries that frame's stamp
    for command, frame in zip(commands, [c["frame"] for c in info.commands]):
        assert 0 < records[records.index(command) + 1].timestamp - command.timestamp <= 2_000_000
    assert storage.stamp_ns(prompt.header) == stamps[22]
    box = prompt.boxes[0]
    assert box.width > 0 and box.height > 0 and box.x_offset + box.width <= 320 and box.y_offset + box.height <= 240


@pytest.mark.parametrize("encodings", [["bgr8", "mono8", "rgba8", "bgra8"], ["png"], ["jpeg"]])
def test_encodings(tmp_path, encodings):
    info = make_demo(tmp_path / "bag", seconds=0.6, size=(160, 120), encodings=encodings, seed=1)
    images = [r.message() for r in storage.read(tmp_path / "bag", [info.image_topic])]
    assert len(images) == info.frames == 9
    if encodings[0] in ("png", "jpeg"):
        assert info.image_topic == "/camera/image_raw/compressed"
        assert {m.format for m in images} == {encodings[0]}
        decoded = [image_codec.compressed_to_rgb(m) for m in images]
    else:
        assert [m.encoding for m in images] == [encodings[i % len(encodings)] for i in range(9)]
        decoded = [image_codec.image_to_rgb(m) for m in images]
    assert all(d.shape == (120, 160, 3) for d in decoded)


def test_bad_encodings_are_refused(tmp_path):
    with pytest.raises(ValueError, match="unknown encodings"):
        make_demo(tmp_path / "a", size=(160, 120), encodings=["yuv422"])
    with pytest.raises(ValueError, match="mixed"):
        make_demo(tmp_path / "b", size=(160, 120), encodings=["rgb8", "jpeg"])


def test_command_line(tmp_path, capsys):
    assert main(["-q", "make-demo", str(tmp_path / "cli"), "--storage", "sqlite3", "--seconds", "0.6",
                 "--size", "160x120", "--encoding", "bgr8"]) == 0
    assert '"frames": 9' in capsys.readouterr().out
    assert (tmp_path / "cli" / "cli.db3").is_file()


def test_ground_truth_is_the_answer_to_the_command_in_force(tmp_path):
    info = make_demo(tmp_path / "demo", seconds=2.0, fps=15, size=(320, 240), seed=4)
    records = list(storage.read(tmp_path / "demo", ["/camera/image_raw", "/ground_truth"]))
    images = [r.message() for r in records if r.topic == "/camera/image_raw"]
    truths = [r.message() for r in records if r.topic == "/ground_truth"]
    assert [storage.stamp_ns(t.header) for t in truths] == [storage.stamp_ns(m.header) for m in images]
    starts = [c["frame"] for c in info.commands]
    for index, truth in enumerate(truths):
        command = info.commands[max(i for i, s in enumerate(starts) if s <= index)]
        assert (truth.task, truth.height, truth.width) == (command["task"], 240, 320)
        assert {t.id for t in truth.instances} <= set(command["targets"])
        for inst in truth.instances:
            mask = mask_rle.decode(inst.mask_rle, truth.height, truth.width)
            assert 0 < mask.mean() < 0.5
            assert (inst.bbox.x_offset, inst.bbox.y_offset, inst.bbox.width, inst.bbox.height) == mask_rle.bbox(mask)
    # on the frame a command is given, every target it names is there
    for command in info.commands:
        assert {t.id for t in truths[command["frame"]].instances} == set(command["targets"]) != set()


@pytest.mark.skipif(not __import__("shutil").which("espeak-ng"), reason="espeak-ng is not installed")
def test_spoken_command_is_audio_before_the_first_frame_that_the_recogniser_hears_right(tmp_path):
    from hyperseg_ros.speech.engines import make_recognizer
    from hyperseg_ros.speech.grammar import spoken_form
    from hyperseg_ros.speech.pipeline import SpeechPipeline

    info = make_demo(tmp_path / "demo", seconds=0.6, size=(160, 120), seed=3, speak="en-us")
    assert _messages(tmp_path / "demo") == _messages(make_demo(tmp_path / "again", seconds=0.6, size=(160, 120),
                                                               seed=3, speak="en-us").output)
    assert info.spoken["text"] == spoken_form(info.commands[0]["text"]) and info.spoken["voice"] == "en-us"
    records = list(storage.read(tmp_path / "demo"))
    audio = [r for r in records if r.topic == "/audio"]
    first_frame = next(r for r in records if r.topic == "/camera/image_raw")
    assert records[:len(audio)] == audio  # the bag opens with the voice, before the first frame
    chunks = [r.message() for r in audio]
    assert {(c.sample_rate, c.channels, c.encoding, len(c.data)) for c in chunks[:-1]} == {(16000, 1, "S16LE", 3200)}
    stamps = [storage.stamp_ns(c.header) for c in chunks]
    assert stamps == [r.timestamp for r in audio] and np.allclose(np.diff(stamps), 1e8, atol=1)
    end = stamps[-1] + len(chunks[-1].data) // 2 * 62_500  # ns per sample at 16 kHz
    assert abs(end - (first_frame.timestamp - 1_000_000)) <= 1 and len(chunks) * 0.1 == pytest.approx(
        info.spoken["seconds"], abs=0.1)
    samples = np.concatenate([np.frombuffer(bytes(c.data), "<i2") for c in chunks]).astype(float)
    assert np.abs(samples[: 16000 // 4]).max() == 0 and np.abs(samples).max() > 3000  # silence, then the voice

    pipeline = SpeechPipeline(make_recognizer("grammar", "", "en"))
    heard = [u for c in chunks for u in pipeline.push(bytes(c.data), c.sample_rate, c.channels, c.encoding,
                                                     storage.stamp_ns(c.header))]
    assert len(heard) == 1  # the utterance ended within the bag's trailing silence
    said = pipeline.transcribe(heard[0])
    assert said.recognition.text == info.spoken["text"] and said.accepted
