"""Every entry point (the node, `hyperseg_bag process`) bounds what one command may cost: the
prompt is part of every forward pass, the id part of every result and log line."""
import pytest

from hyperseg_ros.command import Command, CommandError
from hyperseg_ros.stream import StreamProcessor


class _NoSession:
    """A session that accepts any length: the stream's own limits come first."""

    def check_command(self, cmd):
        pass


@pytest.mark.parametrize("cmd", [
    Command(text="the red circle", id="x" * 100_000),
    Command(task="open_vocabulary", categories=tuple("c" * 100 for _ in range(64))),
    Command(text="the red circle " * 200),
])
def test_the_stream_rejects_a_command_over_a_limit_naming_it(cmd):
    with pytest.raises(CommandError, match=r"\(max_\w+ \d+\)"):
        StreamProcessor(_NoSession()).apply_command(cmd)


def test_the_shipped_model_refuses_a_command_longer_than_it_reads_and_takes_long_words():
    from hyperseg_ros.model import load_model
    from hyperseg_ros.model.session import SegmentationSession

    stream = StreamProcessor(SegmentationSession(*load_model("")))
    words = tuple(f"small purple hexagon on the left {i:02d}".ljust(40, "x")[:40] for i in range(32))
    stream.apply_command(Command(task="open_vocabulary", categories=words))  # 32 x 40 characters: read
    marks = tuple("!?" * 20 for _ in range(32))  # a token per character: 1,490 tokens
    with pytest.raises(CommandError, match=r"too long for this model: \d+ tokens \(max_tokens 512\)"):
        stream.apply_command(Command(task="open_vocabulary", categories=marks))
