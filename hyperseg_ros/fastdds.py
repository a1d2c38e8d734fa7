"""Point Fast DDS at the shipped profile (32 MiB shared-memory segment + UDPv4).

With Fast DDS defaults a best-effort 1280x720 rgb8 image (2.7 MB) does not fit the 512 KiB
shared-memory segment and is silently never delivered. The profile is read when a DDS
participant is created, so `use_shm_profile()` must run before `rclpy.init()`.
"""
from __future__ import annotations

import os
from pathlib import Path

from hyperseg_ros import resources

PROFILE_ENV = "FASTDDS_DEFAULT_PROFILES_FILE"
PROFILE_NAME = "fastdds_shm.xml"


def profile_path() -> Path:
    """The shipped profile: the source tree's config/ or the installed share/hyperseg_ros/config/."""
    return resources.find("config", PROFILE_NAME)


def use_shm_profile(environ: dict | None = None) -> str:
    """Set FASTDDS_DEFAULT_PROFILES_FILE to the shipped profile unless the user already set it.

    environ: the environment to change (default os.environ; pass a copy for a subprocess).
    Returns the profile file in effect.
    """
    env = os.environ if environ is None else environ
    if not env.get(PROFILE_ENV):
        env[PROFILE_ENV] = str(profile_path())
    return env[PROFILE_ENV]
