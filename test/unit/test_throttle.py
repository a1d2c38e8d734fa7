"""PerKindThrottle: one line per kind and period, the held-back count said in the next line."""
from hyperseg_ros.throttle import PerKindThrottle


def test_each_kind_has_its_own_period():
    now = [0.0]
    throttle = PerKindThrottle(2.0, clock=lambda: now[0])
    # three different reasons within 0.6 s: three lines
    assert [throttle.allow(k) for k in ("encoding", "size_mismatch", "decode")] == [0, 0, 0]
    now[0] = 0.6
    assert throttle.allow("encoding") is None and throttle.allow("encoding") is None
    now[0] = 2.1
    assert throttle.allow("encoding") == 2  # two held back since the last encoding line
    assert throttle.allow("decode") == 0
