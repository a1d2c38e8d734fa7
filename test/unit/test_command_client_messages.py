"""hyperseg_command's messages and how it recognises the answer to what it sent (no ROS graph)."""
import pytest
from hyperseg_ros.msg import Segmentation, SegmentationCommand, SegmentedInstance
from std_msgs.msg import String

from hyperseg_ros.command_client import answers, build_message, describe_answer, parse_args


def test_a_bare_sentence_is_a_string_on_command():
    topic, msg = build_message(parse_args(["the red circle"]))
    assert topic == "command" and isinstance(msg, String) and msg.data == "the red circle"


@pytest.mark.parametrize("argv, task", [
    (["the red circle", "--id", "c1"], "referring"),
    (["--categories", "circle, star ,ring"], "open_vocabulary"),
    (["--box", "10", "20", "30", "40", "--point", "5", "6"], "visual_prompt"),
    (["which one holds water", "--task", "reasoning"], "reasoning"),
])
def test_any_structured_flag_makes_a_segmentation_command(argv, task):
    topic, msg = build_message(parse_args(argv))
    assert topic == "segmentation_command" and isinstance(msg, SegmentationCommand)
    assert msg.task == task and msg.id  # an id is made when none is given, so the answer can be found
    if "--categories" in argv:
        assert list(msg.categories) == ["circle", "star", "ring"]
    if "--box" in argv:
        b = msg.boxes[0]
        assert (b.x_offset, b.y_offset, b.width, b.height) == (10, 20, 30, 40)
        assert (msg.points[0].x, msg.points[0].y) == (5.0, 6.0)
    if "--id" in argv:
        assert msg.id == "c1" and msg.text == "the red circle"


def test_nothing_to_send_is_a_usage_error():
    with pytest.raises(SystemExit):
        parse_args(["--wait"])


def _seg(command_id, text="", categories=()):
    return Segmentation(command_id=command_id, task="referring", text=text, categories=list(categories))


def test_answers_match_by_id_or_by_a_new_id_with_the_sentence():
    _, structured = build_message(parse_args(["x", "--id", "mine"]))
    assert answers(_seg("mine"), structured, set()) and not answers(_seg("other", "x"), structured, set())
    sentence = String(data="the red circle")
    assert answers(_seg("n2", "the red circle"), sentence, {"n1"})
    assert not answers(_seg("n1", "the red circle"), sentence, {"n1"})  # an older command of the same words
    assert not answers(_seg("n3", "the blue square"), sentence, {"n1"})
    assert answers(_seg("n4", categories=("circle", "star")), String(data="circle,star"), set())


def test_the_answer_lists_each_instance_with_id_label_score_and_box():
    seg = _seg("c7", "the red circle")
    seg.width, seg.height = 160, 120
    inst = SegmentedInstance(id=3, label="the red circle", score=0.876)
    inst.bbox.x_offset, inst.bbox.y_offset, inst.bbox.width, inst.bbox.height = 1, 2, 30, 40
    seg.instances = [inst]
    lines = describe_answer(seg)
    assert "c7" in lines[0] and "1 instance" in lines[0]
    assert lines[1].strip() == "#3 'the red circle' score 0.88 box x=1 y=2 w=30 h=40"
