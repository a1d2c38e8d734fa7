"""How the tests choose a DDS domain: the user's ROS_DOMAIN_ID when set, else one per test."""


def test_a_set_domain_holds_every_test(make_ros_environment, tmp_path):
    envs = [make_ros_environment(tmp_path, user_domain_id="42") for _ in range(3)]
    assert [e["ROS_DOMAIN_ID"] for e in envs] == ["42", "42", "42"]


def test_unset_each_test_gets_a_domain_of_its_own(make_ros_environment, tmp_path):
    ids = [int(make_ros_environment(tmp_path, user_domain_id=None)["ROS_DOMAIN_ID"]) for _ in range(5)]
    assert len(set(ids)) == 5 and all(1 <= i <= 100 for i in ids)
