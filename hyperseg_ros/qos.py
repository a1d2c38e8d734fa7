"""The QoS profiles of the interface contract, shared by the node and the bag tools."""
from __future__ import annotations

from rclpy.qos import QoSDurabilityPolicy, QoSHistoryPolicy, QoSProfile, QoSReliabilityPolicy


def image_qos(reliability: str) -> QoSProfile:
    """SensorDataQoS with depth 1 (REP 2003) or its reliable twin, for cameras and bags that differ."""
    policies = {"best_effort": QoSReliabilityPolicy.BEST_EFFORT, "reliable": QoSReliabilityPolicy.RELIABLE}
    if reliability not in policies:
        raise ValueError(f"image_reliability must be best_effort or reliable, not {reliability!r}")
    return QoSProfile(history=QoSHistoryPolicy.KEEP_LAST, depth=1, reliability=policies[reliability],
                      durability=QoSDurabilityPolicy.VOLATILE)


def reliable(depth: int = 10) -> QoSProfile:
    """Reliable, volatile, keep-last `depth`: commands and results, and every topic a bag tool replays
    or records (a recorder keeps a deeper queue so bursts are not lost)."""
    return QoSProfile(history=QoSHistoryPolicy.KEEP_LAST, depth=depth, reliability=QoSReliabilityPolicy.RELIABLE)


RELIABLE_10 = reliable(10)
