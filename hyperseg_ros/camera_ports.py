"""One camera's ROS ends in the perception node, and what the node watches of its image input."""
from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from hyperseg_ros.cameras import Camera
from hyperseg_ros.diagnostics import ImageInput


@dataclass
class CameraPorts:
    """Publishers, subscriptions and services of `camera` (the command subscriptions and reset
    service only for a named camera: the unnamed one answers the node's own), and the times
    its image subscription last delivered (for the silence warning)."""

    camera: Camera
    seg_pub: Any
    overlay_pub: Any = None
    command_subs: list = field(default_factory=list)
    services: list = field(default_factory=list)
    image_sub: Any = None  # while active
    image_at: float | None = None  # monotonic time of the last image received
    matched_at: float | None = None  # when an image publisher was first matched
    silence_warned: bool = False

    def restart_silence(self) -> None:
        """Silence is counted from activation, not across the inactive time."""
        self.image_at = self.matched_at = None
        self.silence_warned = False

    def image_input(self, silence_s: float, warn: Callable[[str], None]) -> ImageInput | None:
        """Matched image publishers and how long none of them delivered an image; `warn` once per
        silence. A publisher whose images never arrive (QoS or transport) is otherwise invisible."""
        sub = self.image_sub
        if sub is None:
            return None
        publishers, now = sub.get_publisher_count(), time.monotonic()
        if publishers == 0:
            self.matched_at, self.silence_warned = None, False
            return ImageInput(0, 0.0, False)
        if self.matched_at is None:
            self.matched_at = now
        since = now - max(self.image_at or 0.0, self.matched_at)
        silent = since >= silence_s
        if silent and not self.silence_warned:
            warn(f"{publishers} image publisher(s) matched on {sub.topic_name} but no image for {since:.0f} s: "
                 "check the publisher's QoS and Fast DDS profile (README)")
        self.silence_warned = silent
        return ImageInput(publishers, since, silent)
