"""Apply each fault of test/faults/faults.yaml alone to a copy of the tree and run the tests named for it.

    python -P scripts/test_faults.py            # the fast faults (make test-faults)
    python -P scripts/test_faults.py --slow     # and the slow ones (ROS tests)
    python -P scripts/test_faults.py --only rle-shifted-by-one-pixel --keep

A fault is caught when its tests fail (pytest exit code 1); missed when they pass; broken when the
replacement does not apply (its `old` text is not in the file exactly once: the code moved, update
the list) or pytest ends otherwise (collection error, timeout). First, the named tests must pass on
the unchanged copy (the baseline), else a failure under a fault would prove nothing.
Exit code 0 only when every fault run is caught.
"""
from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
FAULTS = ROOT / "test" / "faults" / "faults.yaml"


def load(path: Path = FAULTS) -> list[dict]:
    """The fault list: [{name, file, old, new, tests, slow?, why?}]."""
    faults = yaml.safe_load(path.read_text())
    for f in faults:
        missing = {"name", "file", "old", "new", "tests"} - set(f)
        if missing:
            raise ValueError(f"fault {f.get('name', '?')}: missing {sorted(missing)}")
    return faults


def apply(fault: dict, root: Path) -> str:
    """The file's text with the fault applied; ValueError unless `old` occurs exactly once."""
    text = (root / fault["file"]).read_text()
    count = text.count(fault["old"])
    if count != 1:
        raise ValueError(f"{fault['name']}: `old` occurs {count} times in {fault['file']} (expected once)")
    return text.replace(fault["old"], fault["new"])


def copy_tree(dest: Path) -> None:
    """Tracked files and untracked ones git does not ignore, as they are in the working tree."""
    listed = subprocess.run(["git", "ls-files", "-co", "--exclude-standard", "-z"], cwd=ROOT, check=True,
                            capture_output=True).stdout.decode().split("\0")
    for rel in filter(None, listed):
        src = ROOT / rel
        if src.is_file():
            (dest / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / rel)


def pytest(root: Path, tests: list[str], timeout: float, log: Path) -> int:
    env = dict(os.environ, PYTHONDONTWRITEBYTECODE="1")  # no stale .pyc between a fault and its undo
    env.pop("PYTHONPATH", None)
    cmd = [sys.executable, "-P", "-m", "pytest", "-q", "-x", "-p", "no:cacheprovider", *tests]
    try:
        with log.open("w") as out:
            return subprocess.run(cmd, cwd=root, env=env, stdout=out, stderr=subprocess.STDOUT, timeout=timeout).returncode
    except subprocess.TimeoutExpired:
        return -1


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--slow", action="store_true", help="also the faults marked slow (ROS tests)")
    p.add_argument("--only", action="append", default=[], help="run only this fault (repeatable)")
    p.add_argument("--no-baseline", action="store_true", help="skip the run of the named tests on the unchanged copy")
    p.add_argument("--timeout", type=float, default=900, help="seconds per pytest run")
    p.add_argument("--keep", action="store_true", help="keep the copy and the pytest logs")
    args = p.parse_args(argv)

    faults = [f for f in load() if (not args.only or f["name"] in args.only) and (args.slow or args.only
                                                                                 or not f.get("slow"))]
    skipped = [f["name"] for f in load() if f.get("slow") and f not in faults and not args.only]
    work = Path(tempfile.mkdtemp(prefix="hyperseg-faults-"))
    tree = work / "tree"
    copy_tree(tree)
    results: list[tuple[str, str, float]] = []
    try:
        if not args.no_baseline:
            tests = list(dict.fromkeys(t for f in faults for t in f["tests"]))
            started = time.monotonic()
            rc = pytest(tree, tests, args.timeout * 2, work / "baseline.log")
            print(f"baseline (no fault): {'pass' if rc == 0 else f'FAIL (pytest exit {rc})'} "
                  f"in {time.monotonic() - started:.0f} s", flush=True)
            if rc != 0:
                print((work / "baseline.log").read_text()[-3000:])
                return 2
        for fault in faults:
            path = tree / fault["file"]
            original = path.read_text()
            started = time.monotonic()
            try:
                path.write_text(apply(fault, tree))
            except ValueError as error:
                results.append((fault["name"], f"BROKEN ({error})", 0.0))
                print(f"{fault['name']}: BROKEN: {error}", flush=True)
                continue
            try:
                rc = pytest(tree, fault["tests"], args.timeout, work / f"{fault['name']}.log")
            finally:
                path.write_text(original)
            verdict = {0: "MISSED", 1: "caught"}.get(rc, f"BROKEN (pytest exit {rc})")
            results.append((fault["name"], verdict, time.monotonic() - started))
            print(f"{fault['name']}: {verdict} in {results[-1][2]:.0f} s by {' '.join(fault['tests'])}", flush=True)
    finally:
        if args.keep:
            print(f"copy and logs kept in {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    caught = sum(v == "caught" for _, v, _ in results)
    print(f"faults: {caught}/{len(results)} caught" + (f"; not run (slow, --slow runs them): {', '.join(skipped)}"
                                                        if skipped else ""))
    return 0 if caught == len(results) else 1


if __name__ == "__main__":
    sys.exit(main())
