"""Test speech: sentences of the world's command generator, spoken by espeak-ng (Debian package)."""
from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path

from hyperseg_ros.speech.grammar import spoken_form
from hyperseg_ros.speech.transcribe import read_wav

VOICES = ("en-us", "en-us+f3", "en-gb", "en-us+m3")


def have_espeak() -> bool:
    return shutil.which("espeak-ng") is not None


def speak(text: str, voice: str = "en-us", wpm: int = 150):
    """(mono float samples, rate) of espeak-ng saying `text`."""
    with tempfile.TemporaryDirectory() as d:
        out = Path(d) / "speech.wav"
        subprocess.run(["espeak-ng", "-v", voice, "-s", str(wpm), "-w", str(out), text], check=True,
                       capture_output=True, timeout=60)
        return read_wav(str(out))


def world_sentences(split: str, n: int, tasks=("referring", "reasoning")) -> list[str]:
    """n spoken-form command sentences drawn by the world on `split` scenes (val, test, shifted)."""
    from hyperseg_ros.world import shifted
    from hyperseg_ros.world.commands import sample_command
    from hyperseg_ros.world.scene import draw_scene
    from hyperseg_ros.world.splits import sample_rng

    draw = shifted.draw_scene if split == "shifted" else draw_scene
    out = []
    for i in range(n):
        rng = sample_rng(split, i, stream=26)
        wc = sample_command(rng, draw(rng), tasks[i % len(tasks)], no_match_rate=0.0)
        out.append(spoken_form(wc.command.text))
    return out
