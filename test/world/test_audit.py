"""The world carries no shortcut: no rule that ignores the command's words beats chance by more
than TOLERANCE on any kind of command (1,000 commands per task, drawn as training draws them)."""
from hyperseg_ros.world.audit import TOLERANCE, audit


def test_no_rule_that_ignores_the_words_beats_chance():
    rows = audit(1000)
    kinds = {row.kind for row in rows}
    assert {"referring: position", "reasoning: corners", "referring: no target",
            "open_vocabulary: object's category"} <= kinds
    for row in rows:
        assert row.n >= 50, (row.kind, row.rule, row.n)
        assert row.excess <= TOLERANCE, (row.kind, row.rule, row.right, row.chance)
