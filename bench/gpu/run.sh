#!/usr/bin/env bash
# The paper-width S-SMKE step in smke's tfjs model on webgpu beside PyTorch on the same shapes, in
# one call on the lent GPU machine (docs/ml.md, "On a GPU (webgpu)"). Prepared by
# bench/gpu/prepare.sh: .gpu/ (node binary, bundle, Dawn, a safetensors file) and .gl/ (Vulkan
# loader). Results go to $OUT (one JSON line per implementation).
# Without a GPU (no nvidia-smi, or SMOKE=1) it runs its smoke path instead: small widths on
# tfjs's cpu backend (and PyTorch on the CPU if torch is installed), to prove the scripts work.
set -uo pipefail
cd "$(dirname "$0")/../.."
OUT="${OUT:-/tmp/out}"; mkdir -p "$OUT"
NODE=node
if [ -f .gpu/node.xz ]; then xz -dc .gpu/node.xz > /tmp/smke-node && chmod +x /tmp/smke-node && NODE=/tmp/smke-node; fi
STEP=bench/gpu/tfjs-step.mjs
if [ -f .gpu/bundle/tfjs-step.js ]; then
  STEP=.gpu/bundle/tfjs-step.js
  if [ -f .gpu/webgpu/dawn.node.xz ] && [ ! -e .gpu/bundle/node_modules/webgpu ]; then
    mkdir -p .gpu/bundle/node_modules/webgpu/dist/linux-x64
    cp .gpu/webgpu/package.json .gpu/webgpu/index.js .gpu/bundle/node_modules/webgpu/
    xz -dc .gpu/webgpu/dawn.node.xz > .gpu/bundle/node_modules/webgpu/dist/linux-x64/dawn.node
  fi
fi
if [ "${SMOKE:-0}" = 1 ] || ! command -v nvidia-smi >/dev/null 2>&1; then
  echo "== smoke (no GPU): small widths on cpu, first_loss on cpu and wasm: 9.06676 at these shapes"
  timeout 300 "$NODE" "$STEP" cpu 4 2 small 2>&1 | grep -v '^tfjs backend' | tee "$OUT/tfjs-smoke.jsonl"
  if python3 -c 'import torch' 2>/dev/null; then
    timeout 300 python3 bench/gpu/torch_step.py 4 2 cpu small 2>&1 | tee "$OUT/torch-smoke.jsonl"
  else echo "torch is not installed here: the PyTorch anchor is skipped in the smoke run"; fi
  grep -q '"reads_per_step":0' "$OUT/tfjs-smoke.jsonl" || { echo "smoke: the step read back to the CPU (or did not run)"; exit 1; }
  exit 0
fi
for f in .gl/*.deb; do [ -f "$f" ] && dpkg -x "$f" /; done; ldconfig
export VK_DRIVER_FILES=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json
[ -f "$VK_DRIVER_FILES" ] || unset VK_DRIVER_FILES
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader | tee "$OUT/gpu.txt"
BATCH="${BATCH:-32}"
echo "== pytorch fp32"; timeout 240 python3 bench/gpu/torch_step.py "$BATCH" 10 2>&1 | tee "$OUT/torch.jsonl"
echo "== smke tfjs webgpu, small widths (first_loss on cpu and wasm here: 9.06676)"
timeout 120 "$NODE" "$STEP" webgpu 4 1 small 2>&1 | grep -v '^tfjs backend' | tee "$OUT/tfjs-small.jsonl"
echo "== smke tfjs webgpu"; timeout 300 "$NODE" "$STEP" webgpu "$BATCH" 10 >"$OUT/tfjs.jsonl" 2>"$OUT/tfjs.err"
cat "$OUT/tfjs.jsonl"; head -c 3000 "$OUT/tfjs.err"
# A WebGPU validation error means some kernel did not run: the timing would be of a wrong computation.
echo "webgpu validation errors: $(grep -c '^validation:' "$OUT/tfjs.err")"
python3 - "$OUT" <<'PY' 2>&1 | tee "$OUT/ratio.txt"
import json, sys
t = json.loads(open(sys.argv[1] + "/torch.jsonl").read().strip().splitlines()[-1])
s = json.loads(open(sys.argv[1] + "/tfjs.jsonl").read().strip().splitlines()[-1])
print(f"smke {s['step_ms']} ms/step vs PyTorch {t['step_ms']} ms/step: {s['step_ms'] / t['step_ms']:.1f}x (goal <= 8x); "
      f"{s['kernels_per_step']} tfjs kernels/step, {s['reads_per_step']} read-backs in the step")
PY
echo "== safetensors written by src/ml, read by PyTorch's safetensors"
python3 - <<'PY' 2>&1 | tee "$OUT/safetensors.txt"
from safetensors.torch import load_file
t = load_file(".gpu/check.safetensors")
assert t["a.w"].tolist() == [[1, 2, 3], [4, 5, 6.5]], t["a.w"]
assert abs(t["b"][2].item() - 3e-5) < 1e-12 and t["b"].dtype.is_floating_point
print("safetensors from smke load in torch:", {k: tuple(v.shape) for k, v in t.items()})
PY
