#!/usr/bin/env bash
# RLFT's CUDA path on a machine that has a GPU and PyTorch but no .NET (the lent GPU machine; see README, "GPU check").
#
#   bash scripts/gpu-check.sh pack          # here: a self-contained publish of rlft without libtorch, packed as
#                                           # artifacts/gpu-check/rlft-gpu.tar.xz (about 47 MiB: .NET runtime included)
#   bash scripts/gpu-check.sh run [ARCHIVE] # there: unpack, load libtorch from the local PyTorch (torch/lib), then
#                                           # rlft info, rlft device-check (logits vs CPU, bf16 gradients, KV cache,
#                                           # train-step TFLOP/s and MFU at gpt2-124m and qwen2-0.5b) and a short PPO
#                                           # job (the default job on cuda); one summary at the end, within 8 minutes
#
# TorchSharp 0.107 is built against libtorch 2.10; a PyTorch of another version may lack symbols libLibTorchSharp.so
# needs. The run says so exactly (the undefined symbols, the versions) instead of failing silently. Outputs go to $OUT
# (or ./gpu-check-out): summary.txt, device-check.jsonl, the job's run directory, logs.
set -uo pipefail
cd "$(dirname "$0")/.."
mode=${1:-}
archive=${2:-artifacts/gpu-check/rlft-gpu.tar.xz}

if [[ "$mode" == pack ]]; then
  set -e
  publish=artifacts/gpu-check/publish
  rm -rf "$publish" && mkdir -p "$(dirname "$archive")"
  dotnet publish src/Host/Host.csproj -c Release -r linux-x64 --self-contained true -o "$publish" -v quiet -nologo
  # libtorch comes from the GPU machine's PyTorch: drop the CPU build's (about 480 MB), symbols and docs.
  (cd "$publish" && rm -f libtorch*.so libc10*.so libgomp*.so* libaoti*.so libbackend_with_compiler.so libjitbackend_test.so \
    libnnapi_backend.so libshm.so libtorchbind_test.so ./*.pdb ./*.xml)
  test -f "$publish/libLibTorchSharp.so" && test -x "$publish/rlft"
  tar -C "$publish" -cf - . | xz -9 -T0 > "$archive"
  rm -rf "$publish"
  bytes=$(stat -c %s "$archive")
  echo "gpu-check: $archive, $((bytes / 1048576)) MiB (the device machine takes at most 64 MiB of carried files)"
  [[ $bytes -le $((64 * 1048576)) ]] || { echo "gpu-check: the archive is over 64 MiB"; exit 1; }
  exit 0
fi
[[ "$mode" == run ]] || { echo "usage: bash scripts/gpu-check.sh pack | run [ARCHIVE]"; exit 2; }

out=${OUT:-$PWD/gpu-check-out}
mkdir -p "$out"
summary="$out/summary.txt"
: > "$summary"
say() { echo "$*" | tee -a "$summary"; }
started=$(date +%s)

[[ -f "$archive" ]] || { say "gpu-check: no archive at $archive (run 'bash scripts/gpu-check.sh pack' where .NET is, and carry artifacts/gpu-check)"; exit 2; }
work=$(mktemp -d)
tar -C "$work" -xJf "$archive" || { say "gpu-check: could not unpack $archive"; exit 2; }
rlft="$work/rlft"

py=$(command -v python3 || command -v python || true)
[[ -n "$py" ]] || { say "gpu-check: no python on PATH, so no PyTorch to take libtorch from"; exit 2; }
torchlib=$("$py" -c 'import os, torch; print(os.path.join(os.path.dirname(torch.__file__), "lib"))' 2>"$out/python.err") \
  || { say "gpu-check: python cannot import torch: $(tail -n 1 "$out/python.err")"; exit 2; }
say "pytorch: $("$py" -c 'import torch; print(torch.__version__, "cuda", torch.version.cuda, "available", torch.cuda.is_available(), "devices", torch.cuda.device_count(), *(torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())))' 2>&1)"
say "libtorch from: $torchlib"
say "nvidia-smi: $(nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>/dev/null | head -n 1 || true)"
export LD_LIBRARY_PATH="$torchlib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"

# What the dynamic loader says about libLibTorchSharp.so against this libtorch: unresolved libraries and symbols.
ldd -r "$work/libLibTorchSharp.so" > "$out/ldd.txt" 2>&1
missing_libs=$(grep -c "=> not found" "$out/ldd.txt" || true)
missing_versions=$(grep -c "version .* not found" "$out/ldd.txt" || true)
missing_syms=$(grep -c "undefined symbol" "$out/ldd.txt" || true)
# (A weak GLIBCXX_3.4.32 requirement is expected on older libstdc++: RLFT's build marks it weak, and the loader accepts it.)
say "libLibTorchSharp.so: $missing_libs libraries not found, $missing_versions symbol versions not found, $missing_syms undefined symbols (ldd.txt)"
grep -E "not found|undefined symbol" "$out/ldd.txt" | head -n 15 | sed 's/^/  /' | tee -a "$summary"

timeout 60 "$rlft" info > "$out/info.txt" 2>&1
info=$?
say "rlft info: exit $info"
# On success its lines; on failure the head of the exception (TorchSharp's own explanation of the failed load).
if [[ $info -eq 0 ]]; then sed 's/^/  /' "$out/info.txt"; else head -n 8 "$out/info.txt" | cut -c1-600 | sed 's/^/  /'; fi | tee -a "$summary"

device=cuda shapes=gpt2-124m,qwen2-0.5b
grep -q "cuda        available" "$out/info.txt" || {
  say "gpu-check: CUDA is not available to rlft; the checks run on the CPU (train step at the tiny shape) to show the rest works"
  device=cpu shapes=tiny
}

timeout 240 "$rlft" device-check --device "$device" --shapes "$shapes" --output "$out/device-check.jsonl" > "$out/device-check.log" 2>&1
check=$?
say "rlft device-check --device $device --shapes $shapes: exit $check"
grep -E '^\{' "$out/device-check.log" | cut -c1-400 | sed 's/^/  /' | tee -a "$summary"
# 0: all passed, 1: some failed (their lines say why); anything else (a crash, 124 = timed out): the last other lines.
[[ $check -eq 0 || $check -eq 1 ]] || grep -vE '^\{' "$out/device-check.log" | tail -n 10 | cut -c1-400 | sed 's/^/  /' | tee -a "$summary"

timeout 150 "$rlft" run quickstart --set device="$device" --set output-dir="$out/runs" > "$out/job.log" 2>&1
job=$?
say "rlft run quickstart (device $device): exit $job"
grep -E "finished|reward|win_rate|objective/kl|peak resident|error|Error" "$out/job.log" | tail -n 14 | sed 's/^/  /' | tee -a "$summary"

say "gpu-check: $(( $(date +%s) - started )) s; info $info, device-check $check, job $job"
[[ $info -eq 0 && $check -eq 0 && $job -eq 0 && $device == cuda ]]
