"""The sound device: where there is none (CI, containers), one clear line, never a traceback."""
import pytest

from hyperseg_ros.speech import microphone, transcribe


def _no_device() -> str:
    try:
        microphone.check()
    except microphone.NoMicrophone as err:
        return str(err)
    pytest.skip("this machine has a microphone")


def test_no_sound_device_is_one_line_naming_what_is_missing():
    message = _no_device()
    assert "\n" not in message and message.startswith(("no sound system", "no microphone"))


def test_transcribe_from_a_missing_microphone_says_so_and_fails(capsys):
    message = _no_device()
    assert transcribe.main(["--microphone"]) == 1
    assert capsys.readouterr().err == f"hyperseg_transcribe: {message}\n"
