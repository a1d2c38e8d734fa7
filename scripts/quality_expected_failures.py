"""Measure which easy-scene quality cases a model fails: runs test/quality with no expected failure
and prints the sha256 of the model (config.json and weights) and the failing case ids (node ids within test/quality).

    python -P scripts/quality_expected_failures.py                        # the shipped model
    python -P scripts/quality_expected_failures.py --model DIR --write    # DIR's list -> expected_failures.json

--write replaces test/quality/expected_failures.json with this model's list: do it when the shipped
model changes (models/hyperseg-world/model.safetensors or config.json), and commit both together.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
QUALITY = ROOT / "test" / "quality"


class _Outcomes:
    """pytest plugin: node id -> passed / failed of each case."""

    def __init__(self):
        self.outcome: dict[str, str] = {}

    def pytest_runtest_logreport(self, report):
        if report.failed:
            self.outcome[report.nodeid] = "failed"
        elif report.when == "call":
            self.outcome.setdefault(report.nodeid, "passed")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--model", default=str(ROOT / "models" / "hyperseg-world"), help="model directory")
    p.add_argument("--write", action="store_true", help="replace test/quality/expected_failures.json")
    args = p.parse_args(argv)
    model = Path(args.model).resolve()
    os.environ["HYPERSEG_MODEL_PATH"] = str(model)
    os.environ["HYPERSEG_QUALITY_XFAIL"] = "0"
    sys.path.insert(0, str(QUALITY))
    import pytest
    from quality_expected import EXPECTED_FAILURES, model_sha256

    outcomes = _Outcomes()
    rc = pytest.main(["-q", "-p", "no:cacheprovider", str(QUALITY / "test_easy_scenes.py")], plugins=[outcomes])
    if rc not in (0, 1):
        print(f"pytest ended with exit code {rc}: no list measured", file=sys.stderr)
        return 2
    cases = {nodeid.split("test/quality/", 1)[-1]: v for nodeid, v in outcomes.outcome.items()}
    fails = sorted(k for k, v in cases.items() if v == "failed")
    sha = model_sha256(model)
    try:
        shown = str(model.relative_to(ROOT))
    except ValueError:
        shown = str(model)
    record = {"about": "Easy cases (node ids within test/quality) the model (config.json + model.safetensors) fails; regenerate "
                       "with `python -P scripts/quality_expected_failures.py --write` (see test/quality/conftest.py).",
              "model": shown, "sha256": sha, "cases": len(cases), "fails": fails}
    print(json.dumps(record, indent=1))
    print(f"{len(fails)} of {len(cases)} cases fail with model {sha}")
    if args.write:
        EXPECTED_FAILURES.write_text(json.dumps(record, indent=1) + "\n")
        print(f"written: {EXPECTED_FAILURES.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
