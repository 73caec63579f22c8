#!/usr/bin/env bash
# CI reproduction of the S-SMKE tables in miniature (pipelines/full.smke, profile mini):
#   1. run the pipeline cold; its report stage checks the expectation bands (a value
#      outside its band fails the run);
#   2. run it again: nothing may run (everything cached);
#   3. run it with one GLUE task's learning rate changed through --set: exactly that
#      task and the report may run, and results/report.compare.html shows glue.rte beside
#      its previous value, every other row unchanged;
#   4. the remote cache: runs 1-3 pushed what they published to a local S3 server
#      (scripts/s3-local.mjs); a fresh clone of the project, pulling from it, may run
#      nothing and must produce the same report.
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

# A local S3 server for the remote cache (step 4). Runs 1-3 push what they publish.
S3_DIR="$(mktemp -d)"
node scripts/s3-local.mjs "$S3_DIR/data" ci > "$S3_DIR/endpoint" 2> "$S3_DIR/stderr" &
S3_PID=$!
trap 'kill $S3_PID 2>/dev/null || true; rm -rf "$S3_DIR"' EXIT
for _ in $(seq 1 100); do grep -q '^endpoint ' "$S3_DIR/endpoint" 2>/dev/null && break; sleep 0.1; done
grep -q '^endpoint ' "$S3_DIR/endpoint" || fail "the local S3 server did not start: $(cat "$S3_DIR/stderr")"
export SMKE_REMOTE=s3://ci/mini SMKE_REMOTE_ENDPOINT="$(sed -n 's/^endpoint //p' "$S3_DIR/endpoint")"
export AWS_ACCESS_KEY_ID=S3RVER AWS_SECRET_ACCESS_KEY=S3RVER
REMOTE_MODE=push

# 1. Cold (or partly cached) run, expectations checked by the report stage.
run run1 --remote-mode "$REMOTE_MODE"
cp results/report/report.json "$S3_DIR/report1.json"
echo "reproduce-mini: report at results/report/report.html"
[ -f results/report/report.md ] || fail "results/report/report.md is missing after a successful run"
sed -n '1,200p' results/report/report.md | grep -E '^\| (ImageNet zero-shot|COCO R@1|Flickr30K R@1|SST2|[a-z0-9]+ (linear eval|finetune)|pretrained init > random init) ' || true

# 2. Everything cached: nothing may start.
run run2 --remote-mode "$REMOTE_MODE"
ran2="$(started "$LOGS/run2.jsonl")"
[ -z "$ran2" ] || fail "run2: expected nothing to run, but these ran: $(echo $ran2)"

# 3. One GLUE task's learning rate changed: exactly that task and the report.
LR_RTE="${LR_RTE:-2.5e-3}"
run run3 --set "lr_rte=$LR_RTE" --remote-mode "$REMOTE_MODE"
ran3="$(started "$LOGS/run3.jsonl" | tr '\n' ' ' | sed 's/ $//')"
[ "$ran3" = "glue[rte] report" ] || fail "run3 (--set lr_rte=$LR_RTE): expected exactly 'glue[rte] report' to run, got '$ran3'"

# 3b. The report compared with the previous run (results/report.compare.html, written by smke run
#     outside the store): it names glue[rte] as what differs, and every row shows the previous
#     run's value (run 1's report, which run 2 reused) and the change; only glue.rte may move.
node -e '
  const fs = require("fs");
  const [page, before, after] = process.argv.slice(1);
  const html = fs.readFileSync(page, "utf8");
  const prev = new Map(JSON.parse(fs.readFileSync(before, "utf8")).rows.map((r) => [r.id, r.value]));
  const bad = [];
  if (!/Differs between the runs: glue\[rte\]: param lr/.test(html)) bad.push("no line naming glue[rte] as changed");
  for (const r of JSON.parse(fs.readFileSync(after, "utf8")).rows) {
    if (typeof r.value !== "number" || r.text !== undefined || !prev.has(r.id)) continue;
    const tr = new RegExp(`<tr id="row-${r.id.replace(/[.[\]]/g, "\\$&")}"[^>]*>(.*?)</tr>`).exec(html);
    const p = tr && /data-previous="([^"]*)"/.exec(tr[1]);
    const d = tr && /data-delta="([^"]*)"/.exec(tr[1]);
    const want = r.value - prev.get(r.id);
    if (!p || Number(p[1]) !== prev.get(r.id)) bad.push(`${r.id}: previous ${p ? p[1] : "missing"}, expected ${prev.get(r.id)}`);
    else if (!d || Math.abs(Number(d[1]) - want) > 1e-9) bad.push(`${r.id}: change ${d ? d[1] : "missing"}, expected ${want}`);
    else if (r.id !== "glue.rte" && want !== 0) bad.push(`${r.id} moved by ${want}, but only glue[rte] reran`);
  }
  if (bad.length) { console.error(bad.join("\n")); process.exit(1); }
  console.log(`reproduce-mini: ${page}: glue.rte ${prev.get("glue.rte")} -> ${JSON.parse(fs.readFileSync(after, "utf8")).rows.find((r) => r.id === "glue.rte").value}, every other row unchanged`);
' results/report.compare.html "$S3_DIR/report1.json" results/report/report.json || fail "run3: the comparison with the previous run (results/report.compare.html) is wrong or missing"

# 4. A fresh clone of the project shares the remote: it pulls everything and runs nothing.
ROOT="$(pwd)"
CLONE="$S3_DIR/clone"
git clone -q "$ROOT" "$CLONE" || fail "could not clone the project for the remote cache check"
t0=$(date +%s.%N)
rc=0
(cd "$CLONE" && node "$ROOT/bin/smke.js" run "$PIPELINE" -j "$JOBS" --json --remote-mode pull > "$ROOT/$LOGS/clone.jsonl" 2> "$ROOT/$LOGS/clone.stderr") || rc=$?
t1=$(date +%s.%N)
echo "reproduce-mini: clone (pull from the remote cache): $(summary "$LOGS/clone.jsonl"), wall $(awk "BEGIN { printf \"%.2f\", $t1 - $t0 }") s, exit $rc"
[ "$rc" -eq 0 ] || { tail -n 20 "$LOGS/clone.stderr" >&2; fail "clone: smke run exited $rc"; }
ranc="$(started "$LOGS/clone.jsonl")"
[ -z "$ranc" ] || fail "clone: expected everything to come from the remote cache, but these ran: $(echo $ranc)"
cmp -s "$CLONE/results/report/report.json" "$S3_DIR/report1.json" || fail "clone: its report differs from run1's"

echo "reproduce-mini: OK (expectations met; second run all cached; --set lr_rte reran exactly glue[rte] and report, compared with the previous run; a fresh clone pulled everything from the remote cache and ran nothing)"
