#!/usr/bin/env bash
# CI reproduction of the S-SMKE tables in miniature (pipelines/full.smke, profile mini):
#   1. run the pipeline cold; its report stage checks the expectation bands (a value
#      outside its band fails the run);
#   2. run it again: nothing may run (everything cached);
#   3. run it with one GLUE task's learning rate changed through --set: exactly that
#      task and the report may run.
# Exits non-zero with a message naming what went wrong.
# Usage: scripts/reproduce-mini.sh   (from the repository root; env: JOBS=2, SMKE_STORE)
set -euo pipefail
cd "$(dirname "$0")/.."

JOBS="${JOBS:-2}"
PIPELINE=pipelines/full.smke
LOGS="${REPRODUCE_LOGS:-.smke/reproduce}"
mkdir -p "$LOGS"
fail() { echo "reproduce-mini: FAIL: $*" >&2; exit 1; }

[ -f dist/cli/main.js ] || npx tsc -p tsconfig.json || fail "build failed"

# Instances that started in a --json event log, sorted, one per line.
started() { node -e '
  const lines = require("fs").readFileSync(process.argv[1], "utf8").split("\n").filter(Boolean);
  const ids = new Set();
  for (const l of lines) { try { const e = JSON.parse(l); if (e.type === "started") ids.add(e.instance); } catch {} }
  console.log([...ids].sort().join("\n"));' "$1"; }
summary() { node -e '
  const lines = require("fs").readFileSync(process.argv[1], "utf8").split("\n").filter(Boolean);
  const s = lines.map((l) => { try { return JSON.parse(l); } catch { return {}; } }).filter((e) => e.type === "summary").pop();
  if (!s) { console.log("no summary"); process.exit(0); }
  console.log(`${s.ran} ran, ${s.cached} cached, ${s.failed} failed, ${s.seconds.toFixed(2)} s`);' "$1"; }
# Messages of failed events, so a failed expectation is named in CI's output.
failures() { node -e '
  const lines = require("fs").readFileSync(process.argv[1], "utf8").split("\n").filter(Boolean);
  for (const l of lines) { try { const e = JSON.parse(l); if (e.type === "failed") console.log(`  ${e.instance}: ${e.error}`); } catch {} }' "$1"; }

run() { # name, extra args...
  local name="$1"; shift
  local t0 t1 rc=0
  t0=$(date +%s.%N)
  node bin/smke.js run "$PIPELINE" -j "$JOBS" --json "$@" > "$LOGS/$name.jsonl" 2> "$LOGS/$name.stderr" || rc=$?
  t1=$(date +%s.%N)
  echo "reproduce-mini: $name: $(summary "$LOGS/$name.jsonl"), wall $(awk "BEGIN { printf \"%.2f\", $t1 - $t0 }") s, exit $rc"
  if [ "$rc" -ne 0 ]; then
    failures "$LOGS/$name.jsonl" >&2
    tail -n 20 "$LOGS/$name.stderr" >&2 || true
    fail "$name: smke run exited $rc (a stage failed or an expectation of the report is not met; events in $LOGS/$name.jsonl)"
  fi
}

# 1. Cold (or partly cached) run, expectations checked by the report stage.
run run1
echo "reproduce-mini: report at results/report/report.html"
[ -f results/report/report.md ] || fail "results/report/report.md is missing after a successful run"
sed -n '1,200p' results/report/report.md | grep -E '^\| (ImageNet zero-shot|COCO R@1|Flickr30K R@1|SST2|[a-z0-9]+ (linear eval|finetune)|pretrained init > random init) ' || true

# 2. Everything cached: nothing may start.
run run2
ran2="$(started "$LOGS/run2.jsonl")"
[ -z "$ran2" ] || fail "run2: expected nothing to run, but these ran: $(echo $ran2)"

# 3. One GLUE task's learning rate changed: exactly that task and the report.
LR_RTE="${LR_RTE:-2.5e-3}"
run run3 --set "lr_rte=$LR_RTE"
ran3="$(started "$LOGS/run3.jsonl" | tr '\n' ' ' | sed 's/ $//')"
[ "$ran3" = "glue[rte] report" ] || fail "run3 (--set lr_rte=$LR_RTE): expected exactly 'glue[rte] report' to run, got '$ran3'"

echo "reproduce-mini: OK (expectations met; second run all cached; --set lr_rte reran exactly glue[rte] and report)"
