"""Command limits: what one command may ask for is bounded, each limit is a parameter, and a
command over a limit is rejected with the limit named."""
import pytest

from hyperseg_ros.command import (
    REJECT_OUTSIDE_IMAGE,
    REJECT_TOO_LONG,
    REJECT_TOO_MANY,
    REJECT_UNKNOWN_TASK,
    Command,
    CommandError,
    CommandLimits,
    validate_command,
)

LIMITS = CommandLimits()


@pytest.mark.parametrize("cmd,limit,reason", [
    (Command(text="the red circle", id="x" * 100_000), "max_command_id_chars", REJECT_TOO_LONG),
    (Command(task="open_vocabulary", categories=tuple("c" * 100 for _ in range(64))), "max_categories", REJECT_TOO_MANY),
    (Command(task="open_vocabulary", categories=("c" * (LIMITS.max_category_chars + 1),)), "max_category_chars",
     REJECT_TOO_LONG),
    (Command(text="x" * (LIMITS.max_text_chars + 1)), "max_text_chars", REJECT_TOO_LONG),
    (Command(task="reasoning", text="x" * (LIMITS.max_text_chars + 1)), "max_text_chars", REJECT_TOO_LONG),
    (Command(task="visual_prompt", points=((1.0, 1.0),) * (LIMITS.max_prompts + 1)), "max_prompts", REJECT_TOO_MANY),
])
def test_over_a_limit_is_rejected_with_the_limit_named(cmd, limit, reason):
    with pytest.raises(CommandError, match=rf"\({limit} {getattr(LIMITS, limit)}\)") as err:
        validate_command(cmd, limits=LIMITS)
    assert err.value.reason == reason


def test_at_the_limits_a_command_is_accepted():
    validate_command(Command(text="x" * LIMITS.max_text_chars, id="i" * LIMITS.max_command_id_chars), limits=LIMITS)
    validate_command(Command(task="open_vocabulary", categories=("c" * LIMITS.max_category_chars,) * LIMITS.max_categories),
                     limits=LIMITS)


def test_limits_come_from_the_node_parameters():
    limits = CommandLimits.from_params({"max_categories": 2, "max_text_chars": 5, "score_threshold": 0.5})
    assert (limits.max_categories, limits.max_text_chars, limits.max_prompts) == (2, 5, LIMITS.max_prompts)
    with pytest.raises(CommandError, match=r"\(max_categories 2\)"):
        validate_command(Command(task="open_vocabulary", categories=("a", "b", "c")), limits=limits)


def test_rejections_carry_a_reason_and_a_short_message():
    with pytest.raises(CommandError) as err:
        validate_command(Command(task="d" * 10_000, text="the red circle"))
    assert err.value.reason == REJECT_UNKNOWN_TASK and len(str(err.value)) < 200
    with pytest.raises(CommandError) as err:
        validate_command(Command(task="visual_prompt", boxes=((70, 10, 20, 10),)), image_size=(60, 80))
    assert err.value.reason == REJECT_OUTSIDE_IMAGE
