"""Every entry point (the node, `hyperseg_bag process`) bounds what one command may cost: the
prompt is part of every forward pass, the id part of every result and log line."""
import pytest

from hyperseg_ros.command import Command, CommandError
from hyperseg_ros.stream import StreamProcessor


class _NoSession:
    """apply_command never touches the session."""


@pytest.mark.parametrize("cmd", [
    Command(text="the red circle", id="x" * 100_000),
    Command(task="open_vocabulary", categories=tuple("c" * 100 for _ in range(64))),
    Command(text="the red circle " * 200),
])
def test_the_stream_rejects_a_command_over_a_limit_naming_it(cmd):
    with pytest.raises(CommandError, match=r"\(max_\w+ \d+\)"):
        StreamProcessor(_NoSession()).apply_command(cmd)
