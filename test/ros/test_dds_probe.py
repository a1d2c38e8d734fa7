"""The session's DDS check (`dds_check`, test/dds_probe.py): it hears a talker of its own domain
and says so when the talker is in another, so a machine without working DDS fails the ROS tests
at once with a diagnosis."""
from dds_probe import machine_report, probe


def test_a_talker_of_the_same_domain_is_heard(ros_env, dds_check):
    assert dds_check is None
    ok, printed = probe(ros_env, listen_s=60)
    assert ok and printed.strip() == "heard", printed


def test_a_talker_of_another_domain_is_not_heard_and_the_report_says_where_to_look(ros_env):
    other = dict(ros_env, ROS_DOMAIN_ID=str(int(ros_env["ROS_DOMAIN_ID"]) % 100 + 1))
    ok, printed = probe(ros_env, listen_s=5, listener_env=other)
    assert not ok and "nothing heard on /hyperseg_dds_probe within 5 s" in printed, printed
    report = machine_report(ros_env)
    assert "/dev/shm:" in report and f"ROS_DOMAIN_ID={ros_env['ROS_DOMAIN_ID']}" in report
