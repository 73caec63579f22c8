#!/usr/bin/env bash
# Runs on the lent GPU machine (see docs/ml.md, "GPU check"): the paper-width
# S-SMKE step in smke's tfjs model on webgpu beside PyTorch on the same shapes.
# Expects, carried from the developer machine: .gpu/node.xz (the node binary),
# .gpu/bundle.mjs (esbuild bundle of bench/gpu/tfjs-step.mjs), .gpu/node_modules/webgpu
# (Dawn for Node), .gl/*.deb (Vulkan/EGL loaders). Results go to $OUT.
set -uo pipefail
OUT="${OUT:-/tmp/out}"; mkdir -p "$OUT"
for f in .gl/*.deb; do dpkg -x "$f" /; done; ldconfig
export VK_DRIVER_FILES=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json
[ -f "$VK_DRIVER_FILES" ] || unset VK_DRIVER_FILES
xz -dc .gpu/node.xz > /tmp/node && chmod +x /tmp/node
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader | tee "$OUT/gpu.txt"
BATCH="${BATCH:-32}"
echo "== pytorch fp32"; timeout 240 python3 bench/gpu/torch_step.py "$BATCH" 10 2>&1 | tee "$OUT/torch.jsonl"
echo "== smke tfjs webgpu, small widths (first_loss on cpu and wasm here: 9.06676)"
timeout 120 /tmp/node .gpu/bundle.mjs webgpu 4 1 small 2>&1 | grep -v '^tfjs backend' | tee "$OUT/tfjs-small.jsonl"
echo "== smke tfjs webgpu"; timeout 300 /tmp/node .gpu/bundle.mjs webgpu "$BATCH" 10 >"$OUT/tfjs.jsonl" 2>"$OUT/tfjs.err"
cat "$OUT/tfjs.jsonl"; head -c 3000 "$OUT/tfjs.err"
# A WebGPU validation error means some kernel did not run: the timing would be of a wrong computation.
echo "webgpu validation errors: $(grep -c '^validation:' "$OUT/tfjs.err")"
echo "== safetensors written by src/ml, read by PyTorch's safetensors"
python3 - <<'PY' 2>&1 | tee "$OUT/safetensors.txt"
from safetensors.torch import load_file
t = load_file(".gpu/check.safetensors")
assert t["a.w"].tolist() == [[1, 2, 3], [4, 5, 6.5]], t["a.w"]
assert abs(t["b"][2].item() - 3e-5) < 1e-12 and t["b"].dtype.is_floating_point
print("safetensors from smke load in torch:", {k: tuple(v.shape) for k, v in t.items()})
PY
