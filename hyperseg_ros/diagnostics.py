"""`/diagnostics` content: frame accounting, latency, model, device and memory."""
from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import psutil
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue

from hyperseg_ros.stream import StatsSnapshot

# A frame is accounted for once: received = processed + dropped + rejected + in_flight.


def _kv(key: str, value) -> KeyValue:
    if isinstance(value, float):
        value = "nan" if math.isnan(value) else f"{value:.3f}"
    return KeyValue(key=key, value=str(value))


def device_memory_mb(device: str) -> float | None:
    """Memory allocated by torch on a CUDA device in MiB, None on CPU."""
    if not device.startswith("cuda"):
        return None
    import torch

    return torch.cuda.memory_allocated(device) / 2**20


@dataclass(frozen=True)
class ImageInput:
    """The image subscription as the node sees it: matched publishers, seconds since the last image
    (or since a publisher was matched, if none came yet), and whether that silence is long enough
    to report (a matched publisher whose images never arrive is invisible otherwise)."""

    publishers: int
    seconds_since_image: float
    silent: bool


def diagnostic_status(stats: StatsSnapshot, name: str, hardware_id: str, model: str, device: str,
                      lifecycle_state: str = "active", image_input: ImageInput | None = None) -> DiagnosticStatus:
    """One DiagnosticStatus: WARN when not active (lifecycle), frames were rejected or none
    processed yet, else OK."""
    values = [
        _kv("lifecycle_state", lifecycle_state),
        _kv("frames_received", stats.received),
        _kv("frames_processed", stats.processed),
        _kv("frames_dropped", sum(stats.dropped.values())),
        _kv("frames_rejected", sum(stats.rejected.values())),
        _kv("frames_in_flight", stats.in_flight),
        *[_kv(f"dropped_{reason}", n) for reason, n in sorted(stats.dropped.items())],
        *[_kv(f"rejected_{reason}", n) for reason, n in sorted(stats.rejected.items())],
        _kv("commands_received", stats.commands_received),
        _kv("commands_rejected", sum(stats.commands_rejected.values())),
        _kv("commands_lost", stats.commands_lost),
        *[_kv(f"command_rejected_{reason}", n) for reason, n in sorted(stats.commands_rejected.items())],
        _kv("latency_p50_ms", stats.latency_p50_ms),
        _kv("latency_p99_ms", stats.latency_p99_ms),
        _kv("processed_per_s", stats.processed_per_s),
        # where a processed frame's time goes, mean ms per frame over the last 64 (StreamStats)
        *[_kv(f"stage_{stage}_mean_ms", ms) for stage, ms in stats.stage_mean_ms.items()],
        _kv("model", model),
        _kv("device", device),
        _kv("process_rss_mb", psutil.Process().memory_info().rss / 2**20),
    ]
    gpu = device_memory_mb(device)
    if gpu is not None:
        values.append(_kv("device_memory_mb", gpu))
    if image_input is not None:
        values += [_kv("image_publishers", image_input.publishers),
                   _kv("seconds_since_image", float(image_input.seconds_since_image))]
    if lifecycle_state != "active":
        level, message = DiagnosticStatus.WARN, f"{lifecycle_state}: not serving"
    elif image_input is not None and image_input.silent:
        level, message = DiagnosticStatus.WARN, (f"{image_input.publishers} image publisher(s) matched, no image for "
                                                 f"{image_input.seconds_since_image:.0f} s")
    elif stats.rejected or stats.commands_rejected:
        level, message = DiagnosticStatus.WARN, "serving; some input was rejected"
    elif stats.processed == 0:
        level, message = DiagnosticStatus.WARN, "no frame processed yet"
    else:
        level, message = DiagnosticStatus.OK, "serving"
    return DiagnosticStatus(level=level, name=name, message=message, hardware_id=hardware_id, values=values)


def diagnostic_array(stamp, stats: StatsSnapshot, name: str, hardware_id: str, model: str, device: str,
                     lifecycle_state: str = "active", image_input: ImageInput | None = None,
                     cameras: Sequence[DiagnosticStatus] = ()) -> DiagnosticArray:
    """The DiagnosticArray the node publishes about once a second (`stamp`: builtin_interfaces/Time):
    the node's own status first, then one per camera (`cameras`, with the `cameras` parameter)."""
    msg = DiagnosticArray()
    msg.header.stamp = stamp
    msg.status = [diagnostic_status(stats, name, hardware_id, model, device, lifecycle_state, image_input),
                  *cameras]
    return msg
