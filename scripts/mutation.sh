#!/usr/bin/env bash
# Mutation scores of the ROS-free logic modules: `make mutation` (figures in docs/TESTING.md).
#
# For each module, mutmut (pinned below, in its own venv that sees .venv's packages) mutates a copy of the
# tree (tracked and untracked-not-ignored files; this checkout is never changed) and runs the module's
# tests against every mutant. Printed per module: killed / survived / other, the score, and the survivors
# (`mutmut show NAME` in the kept copy prints a survivor's diff). Equivalent mutants are judged by hand
# and listed in docs/TESTING.md.
#
#   bash scripts/mutation.sh                              # every module below
#   bash scripts/mutation.sh hyperseg_ros/mask_rle.py     # one of them
#   MUTATION_KEEP=1 bash scripts/mutation.sh ...          # keep the copies (paths printed)
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
VENV=${VENV:-$ROOT/.venv}
MUTMUT_VERSION=3.8.1
TOOL=${MUTATION_VENV:-$ROOT/build/mutvenv}
CHILDREN=${MUTATION_CHILDREN:-2}

# module -> the tests that must kill its mutants
declare -A TESTS=(
  [hyperseg_ros/mask_rle.py]="test/unit/test_mask_rle.py test/unit/test_mask_rle_edges.py"
  [hyperseg_ros/training/metrics.py]="test/training/test_metrics.py test/training/test_metrics_wrong_answers.py
                                      test/training/test_metrics_details.py"
  [hyperseg_ros/bag/report.py]="test/bag/test_report.py test/bag/test_report_verdicts.py test/bag/test_report_details.py"
  [hyperseg_ros/model/tracker.py]="test/model/test_tracker.py"
)
MODULES=("$@")
[ ${#MODULES[@]} -gt 0 ] || MODULES=(hyperseg_ros/mask_rle.py hyperseg_ros/training/metrics.py hyperseg_ros/bag/report.py
                                       hyperseg_ros/model/tracker.py)

if ! "$TOOL/bin/python" -c "import mutmut" 2>/dev/null; then
  echo "== mutmut $MUTMUT_VERSION into $TOOL (a venv that sees $VENV's packages)"
  "$VENV/bin/python" -m venv "$TOOL"
  site=$("$VENV/bin/python" -c "import sysconfig; print(sysconfig.get_paths()['purelib'])")
  echo "import site; site.addsitedir('$site')" \
    > "$("$TOOL/bin/python" -c "import sysconfig; print(sysconfig.get_paths()['purelib'])")/project_venv.pth"
  "$TOOL/bin/pip" install -q "mutmut==$MUTMUT_VERSION"
fi

# the ROS libraries .venv's interpreter finds (its ros_wheels_bootstrapper sets them for its own prefix)
export LD_LIBRARY_PATH=$("$VENV/bin/python" -c "import os; print(os.environ.get('LD_LIBRARY_PATH', ''))")
export _ROS_WHEELS_BOOTSTRAP_COMPLETE=1

status=0
for module in "${MODULES[@]}"; do
  tests=${TESTS[$module]:?"no tests listed for $module in scripts/mutation.sh"}
  work=$(mktemp -d /tmp/hyperseg-mutation-XXXXXX)
  (cd "$ROOT" && git ls-files -co --exclude-standard -z | grep -zv '^models/' | xargs -0 cp --parents -t "$work")
  {
    echo "[mutmut]"
    echo "source_paths = hyperseg_ros"
    echo "only_mutate = $module"
    printf 'also_copy =\n    msg\n    config\n'  # shipped files the tests find through hyperseg_ros.resources
    echo "pytest_add_cli_args = -p no:cacheprovider -p no:randomly"
    echo "pytest_add_cli_args_test_selection ="
    for t in $tests; do echo "    $t"; done
  } > "$work/setup.cfg"
  echo "== $module ($tests) in $work"
  (cd "$work" && OMP_NUM_THREADS=1 "$TOOL/bin/mutmut" run --max-children "$CHILDREN" > mutmut-run.log 2>&1) || {
    echo "mutmut run failed: tail of $work/mutmut-run.log"; tail -20 "$work/mutmut-run.log"; status=1; continue; }
  (cd "$work" && "$TOOL/bin/mutmut" export-cicd-stats > /dev/null)
  "$VENV/bin/python" - "$work/mutants/mutmut-cicd-stats.json" "$module" <<'PY'
import json, sys
s = json.load(open(sys.argv[1]))
killed, survived, total = s["killed"], s["survived"], s["total"]
other = {k: v for k, v in s.items() if k not in ("killed", "survived", "total") and v}
print(f"{sys.argv[2]}: {total} mutants, {killed} killed, {survived} survived, other {other or 'none'}; "
      f"score before equivalents are excluded: {killed}/{total} = {killed / max(total, 1):.1%}")
PY
  (cd "$work" && "$TOOL/bin/mutmut" results 2>/dev/null | sed 's/^/  /')
  [ -n "${MUTATION_KEEP:-}" ] || rm -rf "$work"
done
exit $status
