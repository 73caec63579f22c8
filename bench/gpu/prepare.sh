#!/usr/bin/env bash
# Prepares, on the developer machine, everything bench/gpu/run.sh needs on the lent GPU machine
# (which has no Node.js and no internet), under .gpu/ and .gl/ (both git-ignored):
#   .gpu/node.xz            this machine's node binary, xz-compressed
#   .gpu/bundle/            bench/gpu/tfjs-step.mjs and src/ml bundled (rolldown) with tfjs
#   .gpu/webgpu/            Dawn for Node (the `webgpu` package; dawn.node xz-compressed)
#   .gpu/check.safetensors  a file written by src/ml, read back by PyTorch's safetensors there
#   .gl/*.deb               Debian's Vulkan loader (libvulkan1), unpacked there
# Then, in one call on the device machine (carry .gpu and .gl):
#   bash bench/gpu/run.sh            (GPU: PyTorch beside smke; without a GPU it runs its smoke path)
# Usage: bash bench/gpu/prepare.sh   (after `npx tsc -p tsconfig.json`)
set -euo pipefail
cd "$(dirname "$0")/../.."
[ -f dist/ml/smke-train.js ] || { echo "prepare.sh: build first (npx tsc -p tsconfig.json)" >&2; exit 1; }
rm -rf .gpu && mkdir -p .gpu/webgpu .gl
node node_modules/rolldown/bin/cli.mjs bench/gpu/tfjs-step.mjs --format esm --platform node -d .gpu/bundle \
  --external webgpu --external @tensorflow/tfjs-node --external @tensorflow/tfjs-node-gpu >/dev/null
# The bundle imports 'webgpu' by name: a node_modules beside it resolves it.
mkdir -p .gpu/bundle/node_modules
cp node_modules/webgpu/package.json node_modules/webgpu/index.js .gpu/webgpu/
mkdir -p .gpu/webgpu/dist/linux-x64
xz -T2 -6 -c node_modules/webgpu/dist/linux-x64/dawn.node > .gpu/webgpu/dawn.node.xz
xz -T2 -6 -c "$(command -v node)" > .gpu/node.xz
node --input-type=module -e "
import { saveSafetensors } from './dist/ml/safetensors.js';
await saveSafetensors('.gpu/check.safetensors', new Map([
  ['a.w', { shape: [2, 3], data: Float32Array.of(1, 2, 3, 4, 5, 6.5) }],
  ['b', { shape: [3], data: Float32Array.of(1, 2, 3e-5) }],
]));"
if ! ls .gl/libvulkan1_*.deb >/dev/null 2>&1; then (cd .gl && apt-get download libvulkan1 >/dev/null 2>&1) || echo "prepare.sh: could not download libvulkan1 (apt); run.sh uses the machine's Vulkan loader if it has one" >&2; fi
du -sh .gpu .gl
echo "ready: carry .gpu and .gl, run 'bash bench/gpu/run.sh'"
