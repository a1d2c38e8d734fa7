"""Where the files the package ships (config/, msg/, models/) are: one locator for all of them.

In a source checkout they sit next to the `hyperseg_ros/` folder. Installed (`make setup` into
the venv, `pip install`, or `colcon build`) they are under `<prefix>/share/hyperseg_ros/`, where
the prefix is the one this module was installed into, this interpreter's, or any entry of
AMENT_PREFIX_PATH (a sourced workspace). Plain paths only: no ament index query, so the model
and the tools work without a ROS environment.
"""
from __future__ import annotations

import os
import sys
from pathlib import Path

PACKAGE = "hyperseg_ros"
_HERE = Path(__file__).resolve()
SOURCE_ROOT = _HERE.parents[1]  # the checkout, when running from one
# <prefix>/lib/pythonX.Y/site-packages/hyperseg_ros/resources.py -> <prefix>
_INSTALL_PREFIX = _HERE.parents[4] if len(_HERE.parents) > 4 else None


def candidates(*parts: str) -> list[Path]:
    """Every place `parts` (relative to the package's share folder) may be, in search order."""
    places = [SOURCE_ROOT.joinpath(*parts)]
    prefixes = [_INSTALL_PREFIX, Path(sys.prefix),
                *(Path(p) for p in os.environ.get("AMENT_PREFIX_PATH", "").split(os.pathsep) if p)]
    for prefix in prefixes:
        if prefix is not None:
            place = prefix.joinpath("share", PACKAGE, *parts)
            if place not in places:
                places.append(place)
    return places


def find(*parts: str) -> Path:
    """The first existing `share/hyperseg_ros/<parts>` (file or folder); FileNotFoundError naming
    every place looked at otherwise. Example: `find("config", "perception.yaml")`."""
    places = candidates(*parts)
    for place in places:
        if place.exists():
            return place
    raise FileNotFoundError(f"{'/'.join(parts)} of {PACKAGE} not found in: {', '.join(map(str, places))}")
