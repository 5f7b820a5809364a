#!/usr/bin/env bash
# The whole GPU check of hydranet_ros in one go, on a fresh Linux x86-64 machine with an NVIDIA
# driver: creates a virtual environment, installs a CUDA build of PyTorch and the project's
# other pinned requirements, runs hydranet-bench on the GPU and prints its JSON lines plus a
# summary against the targets (480x640, batch 1: model-only fp16 <= 3 ms; end-to-end >= 150
# frames/s). About 5 minutes, most of it the PyTorch download.
#
#   bash scripts/gpu_benchmark.sh [extra hydranet-bench options]
#
# Weights: ../shared/reference/ckpt_nyud_random.pth beside the repository when present, else
# the bundled default model, else freshly initialised NYUDv2-40 weights (speed does not depend
# on the weight values).
#
# Environment variables:
#   PYTHON           interpreter for the venv (default: python3; 3.10 or newer)
#   VENV             where to create the venv (default: $TMPDIR/hydranet-gpu-venv); reused
#   TORCH_SPEC       the PyTorch requirement (default: the pin in requirements.txt)
#   TORCH_INDEX_URL  unset: PyPI, whose Linux x86-64 torch wheels are CUDA builds that bundle
#                    the CUDA libraries (only a driver is needed). To pick the CUDA version,
#                    e.g. TORCH_INDEX_URL=https://download.pytorch.org/whl/cu128 (the same as
#                    `pip install torch==X --index-url https://download.pytorch.org/whl/cu128`).
#   RESULTS          JSON lines are also written here (default: gpu_benchmark.jsonl in $TMPDIR)
#   COMPILE=1        also measure torch.compile (adds minutes of compilation)
#   SKIP_INSTALL=1   use VENV as it is (nothing installed); with DEVICE=cpu and --quick this
#                    smoke-tests the script itself on a machine without a GPU
#   DEVICE           the device to measure (default: cuda)
set -euo pipefail

step() { printf '\n[gpu_benchmark] %s\n' "$*" >&2; }
fail() { printf '[gpu_benchmark] ERROR: %s\n' "$*" >&2; exit 1; }

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
TMP_BASE="${TMPDIR:-/tmp}"
PYTHON="${PYTHON:-python3}"
VENV="${VENV:-$TMP_BASE/hydranet-gpu-venv}"
RESULTS="${RESULTS:-$TMP_BASE/gpu_benchmark.jsonl}"
TORCH_PIN="$(grep -E '^torch==' "$ROOT/requirements.txt" | head -n 1 || true)"
TORCH_SPEC="${TORCH_SPEC:-${TORCH_PIN:-torch}}"
DEVICE="${DEVICE:-cuda}"
started=$SECONDS

command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,driver_version,memory.total \
  --format=csv,noheader >&2 || step 'nvidia-smi not found; trying anyway'

step "virtual environment $VENV"
[ -x "$VENV/bin/python" ] || "$PYTHON" -m venv "$VENV" || fail "cannot create a venv with $PYTHON"
PY="$VENV/bin/python"
if [ "${SKIP_INSTALL:-0}" != 1 ]; then
  "$PY" -m pip install -q --disable-pip-version-check --upgrade pip
  step "installing $TORCH_SPEC${TORCH_INDEX_URL:+ from $TORCH_INDEX_URL}"
  if [ -n "${TORCH_INDEX_URL:-}" ]; then
    "$PY" -m pip install -q --disable-pip-version-check "$TORCH_SPEC" \
      --index-url "$TORCH_INDEX_URL"
  else
    "$PY" -m pip install -q --disable-pip-version-check "$TORCH_SPEC"
  fi
  step 'installing the other requirements'
  OTHER_REQUIREMENTS="$(mktemp "$TMP_BASE/hydranet-requirements.XXXXXX")"
  trap 'rm -f "$OTHER_REQUIREMENTS"' EXIT
  grep -v -E '^[[:space:]]*torch([=<>!~ ;[]|$)' "$ROOT/requirements.txt" > "$OTHER_REQUIREMENTS"
  "$PY" -m pip install -q --disable-pip-version-check -r "$OTHER_REQUIREMENTS"
fi
export PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}"
cd "$ROOT"

if [ "$DEVICE" != cpu ]; then
  step 'checking CUDA'
  "$PY" - <<'EOF' || fail 'PyTorch sees no CUDA GPU (CPU-only wheel, or no driver?)'
import torch
assert torch.cuda.is_available(), torch.__version__
print(f'torch {torch.__version__}, CUDA {torch.version.cuda}, '
      f'{torch.cuda.get_device_name(0)}', flush=True)
EOF
fi

MODEL="$ROOT/../shared/reference/ckpt_nyud_random.pth"
if [ ! -f "$MODEL" ]; then
  MODEL="$ROOT/hydranet_ros/assets/default_model.pt"
fi
if [ ! -f "$MODEL" ]; then
  MODEL="$TMP_BASE/hydranet_initialised_nyud40.pt"
  step "no checkpoint found: initialising NYUDv2-40 weights in $MODEL"
  "$PY" - "$MODEL" <<'EOF'
import sys

import torch

from hydranet_ros.model import build_hydranet, get_preset, save_hydranet

torch.manual_seed(0)
save_hydranet(build_hydranet(get_preset('nyud40')).eval(), sys.argv[1])
EOF
fi

: > "$RESULTS"
bench() {
  "$PY" -m hydranet_ros.tools.bench --device "$DEVICE" --model "$MODEL" "$@" | tee -a "$RESULTS"
}

if [ "$DEVICE" = cpu ]; then
  step 'CPU run (a smoke test of this script)'
  bench --backends torch --precisions fp32 --sizes 480x640 --batch 1 "$@"
else
  step 'precisions and batch sizes at 480x640 (eager, channels_last, folded batch norm)'
  bench --precisions fp16,bf16,fp32 --sizes 480x640 --batch 1,2,4 --repeats 100 --warmup 20 \
    --reference-repeats 20 "$@"
  step 'CUDA graphs, fp16 and bf16, two resolutions'
  bench --precisions fp16,bf16 --cuda-graphs --sizes 480x640,720x1280 --batch 1,4 \
    --repeats 100 --warmup 20 --reference-repeats 20 "$@"
fi
if [ "$DEVICE" != cpu ] && [ -d dev/bench ] && "$PY" -c 'import rclpy' 2>/dev/null; then
  step 'many cameras: one batched node against separate nodes (needs rclpy and a checkout)'
  "$PY" -m dev.bench.cameras --device "$DEVICE" --cameras 1 2 4 --rounds 2 | tee -a "$RESULTS"
fi
if [ "${COMPILE:-0}" = 1 ]; then
  step 'torch.compile, fp16'
  bench --precisions fp16 --compile --sizes 480x640 --batch 1 --repeats 100 --warmup 20 \
    --reference-repeats 10 "$@"
fi

step "summary (all lines in $RESULTS; $((SECONDS - started)) s in all)"
"$PY" - "$RESULTS" <<'EOF'
import json
import sys

MODEL_ONLY_TARGET_MS = 3.0
END_TO_END_TARGET_FPS = 150.0
records = [json.loads(line) for line in open(sys.argv[1]) if line.startswith('{')]
failed = [r for r in records if 'error' in r]
for record in failed:
    print(f'FAILED: {record}')
rows = [r for r in records if 'error' not in r and 'precision' in r]
for record in records:
    for cameras, figures in record.get('summary', {}).items():
        print(f'{cameras} camera(s): one batched node / separate nodes: rate x'
              f'{figures["rate_ratio"]}, memory (RSS) x{figures["rss_ratio"]}')
print(f'{"precision":9} {"graphs":6} {"compile":7} {"size":9} {"batch":5} {"model ms":>9} '
      f'{"fps":>7} {"e2e ms":>8} {"e2e fps":>8} {"x upstream":>10} {"labels":>7}')
for r in rows:
    print(f'{r["precision"]:9} {str(r["cuda_graphs"]):6} {str(r["compile"]):7} '
          f'{r["height"]}x{r["width"]:<5} {r["batch"]:5} {r["median_ms"]:9.2f} {r["fps"]:7.0f} '
          f'{r["e2e_median_ms"]:8.2f} {r["e2e_fps"]:8.0f} '
          f'{r["speedup_vs_reference"] or 0:10.1f} {r["label_agreement"]:7.4f}')
batch1 = [r for r in rows if (r['height'], r['width'], r['batch']) == (480, 640, 1)]
fp16 = [r for r in batch1 if r['precision'] == 'fp16']
if fp16:
    best_model = min(r['median_ms'] for r in fp16)
    best_e2e = max(r['e2e_fps'] for r in batch1)
    print(f'target model-only fp16 480x640 batch 1 <= {MODEL_ONLY_TARGET_MS} ms: '
          f'{best_model:.2f} ms -> {"MET" if best_model <= MODEL_ONLY_TARGET_MS else "MISSED"}')
    print(f'target end-to-end >= {END_TO_END_TARGET_FPS:.0f} frames/s (engine, with overlay): '
          f'{best_e2e:.0f} -> {"MET" if best_e2e >= END_TO_END_TARGET_FPS else "MISSED"}')
sys.exit(1 if failed else 0)
EOF
