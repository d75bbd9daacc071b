#!/usr/bin/env bash
# The GPU check (docs/gpu.md, "One script for a GPU machine"): on a machine with a GPU, no Node and no
# network, with this repository's working tree, its built dist/ and a Node tarball carried along:
#   1. finds Node (on PATH, else unpacks the tarball), node_modules (else unpacks .node/node_modules.tar.xz),
#      a Vulkan loader (else unpacks .gl/*.deb into a private prefix) and NVIDIA's Vulkan driver manifest;
#   2. runs `efficient-densenet doctor --json`;
#   3. PyTorch's CUDA anchor (python/pytorch_cuda_memory.py) when python3 has torch with CUDA;
#   4. `bench --backend webgpu` for DenseNet-201 224² in every memory mode at each batch, one configuration per
#      process, smallest batch first across the modes, each under a time limit; a mode that fails (out of
#      memory, crash, time) at a batch skips its larger batches;
#   5. writes everything into one JSON (gpu-check.json) and a markdown table (gpu-check.md).
# The whole run stays within GPU_CHECK_BUDGET_S (default 450 s, so within 8 minutes with the unpacking).
#
# Usage: scripts/gpu-check.sh [OUT_DIR]            (default: $GPU_CHECK_OUT, else $OUT, else gpu-check-out)
# Settings (environment), defaults for the H200 run:
#   GPU_CHECK_MODEL=densenet201 GPU_CHECK_IMAGE_SIZE=224 GPU_CHECK_BATCHES=16,32,64 GPU_CHECK_MODES=all
#   GPU_CHECK_STEPS=2 (timed steps after the warm-up and the measured one) GPU_CHECK_CLASSES=1000
#   GPU_CHECK_BUDGET_S=450 (everything) GPU_CHECK_CONFIG_TIMEOUT_S=150 (one webgpu configuration)
#   GPU_CHECK_PYTORCH_TIMEOUT_S=120 GPU_CHECK_PYTORCH=auto|off
#   GPU_CHECK_NODE=/path/to/node, or GPU_CHECK_NODE_TARBALL=/path/to/node-v20.x-linux-x64.tar.xz (either wins over
#     PATH's node; without them: PATH's node if >= 20, else the first of .node/node.tar.xz, .node/node-v*.tar.{xz,gz},
#     node-v*-linux-x64.tar.{xz,gz}; the tarball holds bin/node at any depth, as nodejs.org's do)
#   GPU_CHECK_NODE_MODULES_TARBALL (default .node/node_modules.tar.xz; used only when node_modules lacks Dawn)
#   GPU_CHECK_DEBS (default .gl: libvulkan1's .deb, used only when no libvulkan.so.1 is installed)
#   GPU_CHECK_CLI=dist|tsx (default: dist when dist/cli/main.js exists, else tsx)
set -u
cd "$(dirname "$0")/.."
ROOT=$PWD
START=$(date +%s)
BUDGET=${GPU_CHECK_BUDGET_S:-450}
DEADLINE=$((START + BUDGET))
MODEL=${GPU_CHECK_MODEL:-densenet201}
IMAGE_SIZE=${GPU_CHECK_IMAGE_SIZE:-224}
BATCHES=${GPU_CHECK_BATCHES:-16,32,64}
MODES=${GPU_CHECK_MODES:-all}
STEPS=${GPU_CHECK_STEPS:-2}
CLASSES=${GPU_CHECK_CLASSES:-1000}
CONFIG_TIMEOUT=${GPU_CHECK_CONFIG_TIMEOUT_S:-150}
PYTORCH_TIMEOUT=${GPU_CHECK_PYTORCH_TIMEOUT_S:-120}
REPORT_RESERVE=10   # seconds kept for writing the report
MIN_CONFIG=15       # a configuration given less than this is skipped, not started
OUT_DIR=${1:-${GPU_CHECK_OUT:-${OUT:-gpu-check-out}}}
mkdir -p "$OUT_DIR" || exit 1
OUT_DIR=$(cd "$OUT_DIR" && pwd)
RAW=$OUT_DIR/raw
mkdir -p "$RAW"
WORK=$(mktemp -d "${TMPDIR:-/tmp}/gpu-check.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
LOG=$OUT_DIR/gpu-check.log
: >"$LOG"
RECORDS=$RAW/records.jsonl
: >"$RECORDS"

say() { echo "gpu-check: $*" | tee -a "$LOG" >&2; }
now() { date +%s; }
left() { echo $((DEADLINE - $(now))); }
die() { say "error: $*"; exit 1; }

# --- Node -------------------------------------------------------------------------------------------------
node_ok() { [ -x "$1" ] && [ "$("$1" -p 'process.versions.node.split(".")[0] >= 20' 2>/dev/null)" = true ]; }
NODE=${GPU_CHECK_NODE:-}
# An explicit tarball wins over a node on PATH; else PATH's node (>= 20), else the tarballs where the lead puts them.
if [ -z "$NODE" ] && [ -z "${GPU_CHECK_NODE_TARBALL:-}" ] && command -v node >/dev/null && node_ok "$(command -v node)"; then NODE=$(command -v node); fi
if [ -z "$NODE" ]; then
  TARBALL=${GPU_CHECK_NODE_TARBALL:-}
  if [ -z "$TARBALL" ]; then
    for candidate in .node/node.tar.xz .node/node-v*.tar.xz .node/node-v*.tar.gz node-v*-linux-x64.tar.xz node-v*-linux-x64.tar.gz; do
      [ -f "$candidate" ] && { TARBALL=$candidate; break; }
    done
  fi
  [ -n "$TARBALL" ] || die "no Node >= 20 on PATH and no Node tarball (set GPU_CHECK_NODE_TARBALL, or place .node/node.tar.xz: see docs/gpu.md)"
  [ -f "$TARBALL" ] || die "GPU_CHECK_NODE_TARBALL: no such file: $TARBALL"
  mkdir -p "$WORK/node" && tar -xf "$TARBALL" -C "$WORK/node" || die "could not unpack $TARBALL"
  NODE=$(find "$WORK/node" -path '*/bin/node' -type f | head -n 1)
  [ -n "$NODE" ] && node_ok "$NODE" || die "$TARBALL holds no bin/node of version >= 20"
fi
# bench starts its children with its own binary (process.execPath); PATH gets the unpacked one for anything else.
case $NODE in "$WORK"/*) export PATH="$(dirname "$NODE"):$PATH" ;; esac
say "node $("$NODE" --version) ($NODE)"

# --- node_modules (Dawn's native module is node_modules/webgpu/dist/<platform>-<arch>/dawn.node) ----------
DAWN="node_modules/webgpu/dist/linux-$("$NODE" -p process.arch)/dawn.node"
if [ ! -r "$DAWN" ]; then
  NM_TARBALL=${GPU_CHECK_NODE_MODULES_TARBALL:-.node/node_modules.tar.xz}
  [ -f "$NM_TARBALL" ] || die "node_modules has no $DAWN and there is no $NM_TARBALL (see docs/gpu.md)"
  [ -L node_modules ] && rm -f node_modules   # a link that did not travel with its target
  tar -xf "$NM_TARBALL" || die "could not unpack $NM_TARBALL"
  [ -r "$DAWN" ] || die "$NM_TARBALL has no $DAWN"
  say "node_modules unpacked from $NM_TARBALL"
fi

# --- the command line: the built dist/ (the carried, pruned node_modules has no tsx), or tsx from sources ---
CLI_KIND=${GPU_CHECK_CLI:-}
if [ -z "$CLI_KIND" ]; then if [ -f dist/cli/main.js ]; then CLI_KIND=dist; else CLI_KIND=tsx; fi; fi
case $CLI_KIND in
  dist) [ -f dist/cli/main.js ] || die "dist/cli/main.js is missing: run npm run build before carrying dist"; CLI=("$NODE" dist/cli/main.js) ;;
  tsx) [ -d node_modules/tsx ] || die "no dist/ and no tsx: run npm run build before carrying dist"; CLI=("$NODE" --import tsx src/cli/main.ts) ;;
  *) die "GPU_CHECK_CLI must be dist or tsx, got $CLI_KIND" ;;
esac

# --- Vulkan: a loader, and NVIDIA's driver manifest where the loader does not look --------------------------
has_loader() {
  ldconfig -p 2>/dev/null | grep -q 'libvulkan\.so\.1' && return 0
  for dir in ${LD_LIBRARY_PATH//:/ } /usr/lib/x86_64-linux-gnu /lib/x86_64-linux-gnu /usr/lib64 /usr/lib; do
    [ -e "$dir/libvulkan.so.1" ] && return 0
  done
  return 1
}
if ! has_loader; then
  DEBS=${GPU_CHECK_DEBS:-.gl}
  if ls "$DEBS"/*.deb >/dev/null 2>&1; then
    # Into a private prefix, never /: the machine's own libraries stay as they are.
    for deb in "$DEBS"/*.deb; do dpkg -x "$deb" "$WORK/gl" || die "could not unpack $deb"; done
    export LD_LIBRARY_PATH="$WORK/gl/usr/lib/x86_64-linux-gnu${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
    say "Vulkan loader unpacked from $DEBS into $WORK/gl"
  else
    say "no Vulkan loader (libvulkan.so.1) and no .deb in $DEBS: webgpu will report it"
  fi
fi
NVIDIA_ICD=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json
if [ -z "${VK_DRIVER_FILES:-}${VK_ICD_FILENAMES:-}" ] && [ -f "$NVIDIA_ICD" ] &&
  ! ls /usr/share/vulkan/icd.d/nvidia_icd*.json /etc/vulkan/icd.d/nvidia_icd*.json >/dev/null 2>&1; then
  export VK_DRIVER_FILES=$NVIDIA_ICD
  say "VK_DRIVER_FILES=$NVIDIA_ICD"
fi

# --- 1. doctor ---------------------------------------------------------------------------------------------
timeout -k 5 90 "${CLI[@]}" doctor --json >"$RAW/doctor.json" 2>"$RAW/doctor.err" || say "doctor failed: $(head -c 300 "$RAW/doctor.err")"
say "doctor: $("$NODE" -e 'try { const r = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8")); const w = r.backends.find((b) => b.backend === "webgpu"); console.log(`webgpu ${w.available ? "yes" : "no"}: ${w.detail}`); } catch { console.log("no report"); }' "$RAW/doctor.json")"

# --- 2. PyTorch's CUDA anchor --------------------------------------------------------------------------------
PYTORCH_STATUS="not run"
if [ "${GPU_CHECK_PYTORCH:-auto}" = off ]; then
  PYTORCH_STATUS="off (GPU_CHECK_PYTORCH=off)"
elif ! command -v python3 >/dev/null; then
  PYTORCH_STATUS="no python3"
else
  timeout 60 python3 -c 'import torch, torchvision, sys; sys.exit(0 if torch.cuda.is_available() else 3)' >/dev/null 2>"$RAW/pytorch-probe.err"
  probe=$?
fi
if [ "$PYTORCH_STATUS" != "not run" ]; then
  :
elif [ "$probe" = 3 ]; then
  PYTORCH_STATUS="python3's torch sees no CUDA device"
elif [ "$probe" != 0 ]; then
  PYTORCH_STATUS="python3 has no torch and torchvision: $(tail -n 1 "$RAW/pytorch-probe.err")"
else
  limit=$PYTORCH_TIMEOUT
  [ "$limit" -gt $(($(left) - REPORT_RESERVE)) ] && limit=$(($(left) - REPORT_RESERVE))
  say "PyTorch CUDA anchor (limit ${limit}s)"
  t0=$(now)
  PYTHONUNBUFFERED=1 timeout -k 5 "$limit" python3 python/pytorch_cuda_memory.py "$MODEL" "$IMAGE_SIZE" "$BATCHES" naive,efficient "$STEPS" "$CLASSES" \
    >"$RAW/pytorch.jsonl" 2>"$RAW/pytorch.err"
  rc=$?
  PYTORCH_STATUS="exit $rc after $(($(now) - t0)) s$([ $rc = 124 ] && echo ' (time limit: rows so far kept)')"
fi
say "PyTorch: $PYTORCH_STATUS"

# --- 3. webgpu: smallest batch first across the modes ---------------------------------------------------------
# The modes from the library's own table (layers/memory-modes), so a new mode is checked without editing this.
case $CLI_KIND in
  dist) MODES_MODULE=./dist/layers/memory-modes.js; NODE_IMPORT=() ;;
  tsx) MODES_MODULE=./src/layers/memory-modes.ts; NODE_IMPORT=(--import tsx) ;;
esac
MODE_LIST=$("$NODE" "${NODE_IMPORT[@]}" --input-type=module -e '
  const { MEMORY_MODES } = await import(process.argv[1]);
  const group = process.argv[2];
  const modes = group === "all" ? MEMORY_MODES : group.split(",");
  const unknown = modes.filter((m) => !MEMORY_MODES.includes(m));
  if (unknown.length) { console.error(`GPU_CHECK_MODES: unknown ${unknown.join(", ")}; known: ${MEMORY_MODES.join(", ")}, all`); process.exit(2); }
  console.log(modes.join(" "));' "$MODES_MODULE" "$MODES") || die "could not read the memory modes"
declare -A FAILED_AT=()
for batch in ${BATCHES//,/ }; do
  for mode in $MODE_LIST; do
    name="webgpu-$mode-$batch"
    if [ -n "${FAILED_AT[$mode]:-}" ]; then
      printf '{"mode":"%s","batch":%d,"status":"skipped","reason":"failed at batch %s"}\n' "$mode" "$batch" "${FAILED_AT[$mode]}" >>"$RECORDS"
      continue
    fi
    limit=$CONFIG_TIMEOUT
    room=$(($(left) - REPORT_RESERVE))
    [ "$limit" -gt "$room" ] && limit=$room
    if [ "$limit" -lt "$MIN_CONFIG" ]; then
      printf '{"mode":"%s","batch":%d,"status":"skipped","reason":"time budget (%d s) spent"}\n' "$mode" "$batch" "$BUDGET" >>"$RECORDS"
      continue
    fi
    say "$mode batch $batch (limit ${limit}s, $(left) s left)"
    t0=$(now)
    # timeout signals its whole process group: bench's per-configuration child goes too.
    timeout -k 10 "$limit" "${CLI[@]}" bench --backend webgpu --model "$MODEL" --image-size "$IMAGE_SIZE" --batch "$batch" \
      --memory-mode "$mode" --steps "$STEPS" --classes "$CLASSES" --json >"$RAW/$name.json" 2>"$RAW/$name.err"
    rc=$?
    seconds=$(($(now) - t0))
    if [ $rc = 124 ] || [ $rc = 137 ]; then
      status=timeout
    elif [ $rc != 0 ]; then
      status=failed
    elif "$NODE" -e 'const r = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8")).results[0]; process.exit(r && !r.error ? 0 : 3)' "$RAW/$name.json" 2>/dev/null; then
      status=ok
    else
      status=failed
    fi
    [ $status = ok ] || FAILED_AT[$mode]=$batch
    printf '{"mode":"%s","batch":%d,"status":"%s","exitCode":%d,"seconds":%d,"file":"raw/%s.json","stderr":"raw/%s.err"}\n' \
      "$mode" "$batch" "$status" "$rc" "$seconds" "$name" "$name" >>"$RECORDS"
    say "$mode batch $batch: $status in ${seconds}s"
  done
done

# --- 4. the report -----------------------------------------------------------------------------------------
"$NODE" scripts/gpu-check-report.mjs "$OUT_DIR" \
  "$(printf '{"model":"%s","imageSize":%d,"batches":"%s","modes":"%s","steps":%d,"classes":%d,"budgetSeconds":%d,"cli":"%s","pytorchStatus":%s,"elapsedSeconds":%d}' \
    "$MODEL" "$IMAGE_SIZE" "$BATCHES" "$MODE_LIST" "$STEPS" "$CLASSES" "$BUDGET" "$CLI_KIND" \
    "$("$NODE" -p 'JSON.stringify(process.argv[1])' "$PYTORCH_STATUS")" $(($(now) - START)))" || die "the report failed"
say "done in $(($(now) - START)) s: $OUT_DIR/gpu-check.json, $OUT_DIR/gpu-check.md"
