#!/usr/bin/env bash
# gpu_check.sh — the one-call check of the CUDA backend on a lent GPU machine, at most 9 minutes, reporting only
# what ran. Steps, each with its own time limit and a "skipped (reason)" line when the remaining time is too short:
#   1. environment: GPU, driver, nvcc path and toolkit, python/numpy/torch
#   2. build in place, both modules in parallel, kernels with -lineinfo (SVDC_CUDA=1, sm_90)
#   3. smoke test per op family (tests/cuda/smoke.py): one line per family and dtype
#   4. tests/cuda only (CI runs the CPU tests), with the SVD-scale parity cases against torch on the same GPU
#      (SVDC_GPU_LARGE=1: tests/cuda/test_cuda_svd_scale.py)
#   5. the GEMM-using tests again without cuBLAS (SVDC_CUDA_NO_CUBLAS=1: the fallback kernel)
#   6. the full SVD UNet forward beside diffusers on the same GPU, and the tiny pipeline cuda vs cpu
#      (benchmarks/unet_cuda.py)
#   7. compute-sanitizer memcheck and racecheck over the main kernels (attention tiled/wide/rows, group norm,
#      conv2d, conv_temporal)
#   8. op benchmarks in bf16 and fp16 beside torch (benchmarks/ops_cuda.py)
# Results in $OUT (8 files at most): gpu_check.md (the summary: copy it to benchmarks/results/), build.log,
# smoke.log, pytest.log, sanitizer.log, ops_cuda_bf16.md, ops_cuda_fp16.md, unet_cuda.md.
#
# Before the run, on the development machine (the device machine reaches no package registry):
#   bash benchmarks/gpu_check.sh --prepare        # downloads the wheels it needs into .whl/ (git-ignored)
# Then through the device tool, from the repository root (write the commit hash in yourself: the device machine gets
# the files without .git):
#   run(command="SVDC_COMMIT=<hash> bash benchmarks/gpu_check.sh", carry=[".whl"], timeout_s=560)
# Exit status: 0 when every step that ran passed.
set -u -o pipefail
cd "$(dirname "$0")/.."

WHEELS=(scipy-openblas32==0.3.34.481.3 diffusers==0.42.1 importlib_metadata)
if [ "${1:-}" = "--prepare" ]; then
    mkdir -p .whl
    python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
        --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 --platform manylinux_2_17_x86_64 \
        --platform manylinux2014_x86_64 -d .whl "${WHEELS[@]}" || exit $?
    ls -la .whl
    exit 0
fi

OUT="${OUT:-$PWD/gpu_check_out}"
mkdir -p "$OUT"
PY=python3
SUMMARY="$OUT/gpu_check.md"
START=$(date +%s)
LIMIT=${SVDC_GPU_CHECK_SECONDS:-540}  # 9 minutes, all steps together
STATUS=0
note() { echo "$*" | tee -a "$SUMMARY"; }
elapsed() { echo $(( $(date +%s) - START )); }
# can_run NAME SECONDS: true when SECONDS still fit in the budget; otherwise writes the skip line.
can_run() {
    local left=$(( LIMIT - $(elapsed) ))
    if [ "$left" -lt "$2" ]; then
        note "- $1: skipped (needs ~$2 s, $left s left of the ${LIMIT} s budget)"
        return 1
    fi
}
: >"$SUMMARY"

# Packages the image lacks travel as wheels (see --prepare); installed into a private folder.
if ls .whl/*.whl >/dev/null 2>&1; then
    $PY -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/svdc_site .whl/*.whl \
        >"$OUT/build.log" 2>&1 || { echo "wheel install failed:"; cat "$OUT/build.log"; }
    export PYTHONPATH="/tmp/svdc_site${PYTHONPATH:+:$PYTHONPATH}"
fi
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"  # this checkout's svdc, whatever else is installed

# ---- 1. environment ----
NVCC=$(command -v nvcc || echo "not on PATH")
COMMIT="${SVDC_COMMIT:-$(git rev-parse --short HEAD 2>/dev/null || echo unknown)}"
note "# CUDA backend check"
note ""
note "- device: $(nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader 2>/dev/null | head -1 || echo 'nvidia-smi failed')"
note "- date: $(date -u '+%Y-%m-%d %H:%M UTC'); commit: $COMMIT"
note "- nvcc: $NVCC ($(nvcc --version 2>/dev/null | tail -1)); CUDA_HOME=${CUDA_HOME:-unset}"
note "- python: $($PY --version 2>&1); numpy $($PY -c 'import numpy; print(numpy.__version__)' 2>&1 | tail -1);" \
    "torch $($PY -c 'import torch; print(torch.__version__, "cuda", torch.cuda.is_available())' 2>&1 | tail -1);" \
    "diffusers $($PY -c 'import diffusers; print(diffusers.__version__)' 2>&1 | tail -1)"

# ---- 2. build (both extensions in parallel; setup.py adds -lineinfo) ----
t0=$(date +%s)
if ! SVDC_CUDA=1 SVDC_CUDA_ARCHS=90 timeout 240 $PY setup.py build_ext --inplace -j 2 >>"$OUT/build.log" 2>&1; then
    note "- build: FAILED after $(( $(date +%s) - t0 )) s (tail of build.log below)"
    tail -30 "$OUT/build.log" | sed 's/^/    /' | tee -a "$SUMMARY"
    exit 1
fi
BACKEND=$($PY -c "
from svdc import runtime
n, why = runtime._cuda_status()
if n:
    from svdc import _C_cuda
    ok, reason = _C_cuda.cublas_status(0)
    print(f'{_C_cuda.device_name(0)}; GEMM through', 'cuBLAS' if ok else f'the fallback kernel ({reason})')
else:
    print('NO DEVICE:', why)
" 2>&1 | tail -1)
note "- build: ok in $(( $(date +%s) - t0 )) s; backend: $BACKEND"
grep -iE "warning" "$OUT/build.log" | grep -vE "^/usr|SetuptoolsDeprecation|project.license|Running pip as" | head -5 \
    | sed 's/^/    build warning: /' | tee -a "$SUMMARY"

# ---- 3. smoke test per op family ----
if can_run "smoke test per op family" 30; then
    timeout 60 $PY tests/cuda/smoke.py >"$OUT/smoke.log" 2>&1
    rc=$?
    [ $rc -ne 0 ] && STATUS=1
    note "- smoke test per op family: $(tail -1 "$OUT/smoke.log") (exit $rc; every family/dtype line in smoke.log)"
    grep -E "FAIL|ERROR" "$OUT/smoke.log" | head -10 | sed 's/^/    /' | tee -a "$SUMMARY"
fi

# ---- 4-5. tests (no -x: every failure is listed; the first is usually the cause of the rest) ----
count() {  # pass/fail/error/skip counts of a junit file
    $PY - "$1" <<'PYEOF'
import sys, xml.etree.ElementTree as ET
try:
    root = ET.parse(sys.argv[1]).getroot()
except Exception as exc:
    print(f"no junit report ({exc})"); sys.exit()
suites = [root] if root.tag == "testsuite" else list(root)
t = {k: sum(int(s.get(k, 0)) for s in suites) for k in ("tests", "failures", "errors", "skipped")}
print(f"{t['tests'] - t['failures'] - t['errors'] - t['skipped']} passed, {t['failures']} failed, "
      f"{t['errors']} errors, {t['skipped']} skipped")
PYEOF
}
run_pytest() {  # name, seconds, junit file, pytest args...
    local name=$1 secs=$2 junit=$3
    shift 3
    can_run "$name" "$secs" || return 0
    local t0=$(date +%s)
    echo "==== $name" >>"$OUT/pytest.log"
    PYTHONUNBUFFERED=1 timeout "$secs" $PY -m pytest -q -rfE -p no:cacheprovider --junitxml="$junit" "$@" \
        >>"$OUT/pytest.log" 2>&1
    local rc=$?
    [ $rc -ne 0 ] && STATUS=1
    local why=""
    [ $rc -eq 124 ] && why=", TIMED OUT"
    note "- $name: $(count "$junit") (exit $rc$why, $(( $(date +%s) - t0 )) s)"
}
SVDC_GPU_LARGE=1 run_pytest "tests/cuda (with the SVD-scale cases vs torch)" 150 /tmp/svdc_junit_cuda.xml tests/cuda
SVDC_CUDA_NO_CUBLAS=1 run_pytest "GEMM tests with the fallback kernel (SVDC_CUDA_NO_CUBLAS=1)" 60 \
    /tmp/svdc_junit_nocublas.xml tests/cuda/test_cuda_ops.py -k "linear or conv"

# ---- 6. the full UNet forward beside diffusers, the tiny pipeline cuda vs cpu ----
if can_run "SVD UNet forward beside diffusers" 100; then
    OUT="$OUT" SVDC_COMMIT="$COMMIT" timeout 150 $PY benchmarks/unet_cuda.py --frames 14 \
        >>"$OUT/pytest.log" 2>&1
    rc=$?
    [ $rc -ne 0 ] && STATUS=1
    if [ -f "$OUT/unet_cuda.md" ]; then
        note "- SVD UNet forward + tiny pipeline (unet_cuda.md, exit $rc):"
        grep -E "^\| |parity|pipeline" "$OUT/unet_cuda.md" | sed 's/^/    /' | tee -a "$SUMMARY"
    else
        note "- SVD UNet forward beside diffusers: failed (exit $rc; see the end of pytest.log)"
    fi
fi

# ---- 7. compute-sanitizer (memcheck, racecheck) over the main kernels ----
SAN_TESTS=(tests/cuda/test_cuda_ops.py -k "(attention or group_norm or conv2d or conv_temporal) and fp16")
sanitize() {  # tool, seconds
    can_run "compute-sanitizer $1" "$2" || return 0
    echo "==== $1" >>"$OUT/sanitizer.log"
    timeout "$2" compute-sanitizer --tool "$1" --error-exitcode 99 $PY -m pytest -q -p no:cacheprovider \
        "${SAN_TESTS[@]}" >>"$OUT/sanitizer.log" 2>&1
    local rc=$?
    case $rc in
        0) note "- compute-sanitizer $1 (attention incl. the wide D > 128 kernel, group_norm, conv2d, conv_temporal in fp16): clean" ;;
        99) note "- compute-sanitizer $1: ERRORS (kernel and file:line in sanitizer.log)"; STATUS=1 ;;
        124) note "- compute-sanitizer $1: timed out ($2 s), inconclusive" ;;
        *) note "- compute-sanitizer $1: exit $rc (tool or test failure; see sanitizer.log)" ;;
    esac
}
if command -v compute-sanitizer >/dev/null 2>&1; then
    sanitize memcheck 75
    sanitize racecheck 75
else
    note "- compute-sanitizer: skipped (not on PATH)"
fi

# ---- 8. op benchmarks beside torch (information, not pass/fail) ----
for dt in bf16 fp16; do
    if can_run "ops benchmark $dt" 45; then
        if OUT="$OUT" timeout 60 $PY benchmarks/ops_cuda.py --dtype $dt >>"$OUT/pytest.log" 2>&1; then
            note "- ops benchmark $dt: ops_cuda_$dt.md"
        else
            note "- ops benchmark $dt: failed or timed out (see the end of pytest.log)"
        fi
    fi
done

note "- total: $(elapsed) s; overall: $([ $STATUS -eq 0 ] && echo PASS || echo FAIL)"
note ""
note "Failures (from pytest.log):"
grep -E "^(FAILED|ERROR) " "$OUT/pytest.log" | head -40 | sed 's/^/    /' | tee -a "$SUMMARY"
exit $STATUS
