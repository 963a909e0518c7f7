#!/usr/bin/env bash
# gpu_check.sh — the one-shot check of the CUDA backend on a lent GPU machine: builds svdc in place with the CUDA
# module (sm_90), runs tests/cuda and tests/unit, a cuBLAS-free rerun of the GEMM tests, a compute-sanitizer pass
# over a few CUDA tests when the tool works there, a timing table of single ops (benchmarks/ops_cuda.py), and writes
# a summary (device, date, commit, pass/fail counts)
# to $OUT/gpu_check.md, ready to be copied into benchmarks/results/. Also in $OUT (6 files, under the tool's limit
# of 8): build.log, pytest.log, sanitizer.log, ops_cuda.log, ops_cuda.md.
#
# Before the run, on the development machine (the device machine reaches no package registry):
#   bash benchmarks/gpu_check.sh --prepare        # downloads the wheels it needs into .whl/ (git-ignored)
# Then through the device tool, from the repository root:
#   run(command="SVDC_COMMIT=$(git rev-parse --short HEAD) bash benchmarks/gpu_check.sh", carry=[".whl"],
#       timeout_s=420)
# (write the commit hash into the command yourself: the device machine gets the files without .git).
# About 3-5 minutes: build ~1 min, tests ~1-2 min, sanitizer <= 2 min. Exit status: 0 when every test passed.
set -u -o pipefail
cd "$(dirname "$0")/.."

WHEELS=(scipy-openblas32==0.3.34.481.3 diffusers==0.42.1 importlib_metadata)
if [ "${1:-}" = "--prepare" ]; then
    mkdir -p .whl
    python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
        --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 --platform manylinux_2_17_x86_64 \
        --platform manylinux2014_x86_64 -d .whl "${WHEELS[@]}"
    ls -la .whl
    exit $?
fi

OUT="${OUT:-$PWD/gpu_check_out}"
mkdir -p "$OUT"
PY=python3
SUMMARY="$OUT/gpu_check.md"
START=$(date +%s)
note() { echo "$*" | tee -a "$SUMMARY"; }
: >"$SUMMARY"

# Packages the image lacks travel as wheels (see --prepare); installed into a private folder.
if ls .whl/*.whl >/dev/null 2>&1; then
    $PY -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/svdc_site .whl/*.whl \
        >"$OUT/build.log" 2>&1 || { echo "wheel install failed:"; cat "$OUT/build.log"; }
    export PYTHONPATH="/tmp/svdc_site${PYTHONPATH:+:$PYTHONPATH}"
fi

DEVICE_NAME=$(nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader 2>/dev/null | head -1)
COMMIT="${SVDC_COMMIT:-$(git rev-parse --short HEAD 2>/dev/null || echo unknown)}"
note "# CUDA backend check"
note ""
note "- device: ${DEVICE_NAME:-unknown (nvidia-smi failed)}"
note "- date: $(date -u '+%Y-%m-%d %H:%M UTC')"
note "- commit: $COMMIT"
note "- nvcc: $(nvcc --version 2>/dev/null | tail -1)"
note "- python: $($PY --version 2>&1); numpy $($PY -c 'import numpy; print(numpy.__version__)' 2>&1);" \
    "torch $($PY -c 'import torch; print(torch.__version__)' 2>&1 | tail -1)"

# ---- build ----
BUILD_START=$(date +%s)
if ! SVDC_CUDA=1 SVDC_CUDA_ARCHS=90 $PY setup.py build_ext --inplace >>"$OUT/build.log" 2>&1; then
    note "- build: FAILED (tail of build.log below)"
    tail -40 "$OUT/build.log" | tee -a "$SUMMARY"
    exit 1
fi
CUBLAS=$($PY -c "
from svdc import runtime, _C_cuda
n, why = runtime._cuda_status()
print(f'{_C_cuda.device_name(0)}; GEMM through', 'cuBLAS' if _C_cuda.uses_cublas(0) else 'the fallback kernel') if n else print('NO DEVICE:', why)
" 2>&1 | tail -1)
note "- build: ok in $(( $(date +%s) - BUILD_START )) s; backend: $CUBLAS"
grep -iE "warning" "$OUT/build.log" | grep -vE "^/usr|SetuptoolsDeprecation|project.license|Running pip as" | head -5 | sed 's/^/    build warning: /' | tee -a "$SUMMARY"

# ---- tests (no -x: every failure is listed, the first one is usually the cause of the rest) ----
count() {  # pass/fail/error/skip counts of a junit file
    $PY - "$1" <<'EOF'
import sys, xml.etree.ElementTree as ET
try:
    root = ET.parse(sys.argv[1]).getroot()
except Exception as exc:
    print(f"no junit report ({exc})"); sys.exit()
suites = [root] if root.tag == "testsuite" else list(root)
t = {k: sum(int(s.get(k, 0)) for s in suites) for k in ("tests", "failures", "errors", "skipped")}
print(f"{t['tests'] - t['failures'] - t['errors'] - t['skipped']} passed, {t['failures']} failed, "
      f"{t['errors']} errors, {t['skipped']} skipped")
EOF
}
STATUS=0
run_pytest() {  # name, junit file, pytest args...
    local name=$1 junit=$2
    shift 2
    local t0=$(date +%s)
    PYTHONUNBUFFERED=1 timeout 300 $PY -m pytest -q -rfE -p no:cacheprovider --junitxml="$junit" "$@" \
        >>"$OUT/pytest.log" 2>&1
    local rc=$?
    [ $rc -ne 0 ] && STATUS=1
    note "- $name: $(count "$junit") (exit $rc, $(( $(date +%s) - t0 )) s)"
}
echo "==== tests/cuda tests/unit" >>"$OUT/pytest.log"
run_pytest "tests/cuda + tests/unit" /tmp/svdc_junit_main.xml tests/cuda tests/unit
echo "==== GEMM tests without cuBLAS" >>"$OUT/pytest.log"
SVDC_CUDA_NO_CUBLAS=1 run_pytest "GEMM ops with the fallback kernel (SVDC_CUDA_NO_CUBLAS=1)" \
    /tmp/svdc_junit_nocublas.xml tests/cuda/test_cuda_ops.py -k "linear or conv"

# ---- memory checker over a sample (Firecracker machines support it; gVisor ones refuse the device) ----
if command -v compute-sanitizer >/dev/null 2>&1 && [ $(( $(date +%s) - START )) -lt 200 ]; then
    timeout 150 compute-sanitizer --tool memcheck --error-exitcode 99 $PY -m pytest -q -p no:cacheprovider \
        tests/cuda/test_cuda_ops.py -k "(attention or group_norm or conv2d or permute) and fp16" \
        >"$OUT/sanitizer.log" 2>&1
    rc=$?
    case $rc in
        0) note "- compute-sanitizer memcheck (attention, group_norm, conv2d, permute in fp16): clean" ;;
        99) note "- compute-sanitizer memcheck: ERRORS (see sanitizer.log)"; STATUS=1 ;;
        124) note "- compute-sanitizer memcheck: timed out (150 s), inconclusive" ;;
        *) note "- compute-sanitizer memcheck: exit $rc (tool or test failure; see sanitizer.log)" ;;
    esac
fi

# ---- device time of single ops at SVD-XT shapes (information, not pass/fail) ----
if [ $(( $(date +%s) - START )) -lt 280 ]; then
    if OUT="$OUT" timeout 100 $PY benchmarks/ops_cuda.py --dtype fp16 >"$OUT/ops_cuda.log" 2>&1; then
        note "- ops benchmark (fp16): see ops_cuda.md"
    else
        note "- ops benchmark: failed or timed out (see ops_cuda.log)"
    fi
fi

note "- total: $(( $(date +%s) - START )) s; overall: $([ $STATUS -eq 0 ] && echo PASS || echo FAIL)"
note ""
note "Failures (from pytest.log):"
grep -E "^(FAILED|ERROR) " "$OUT/pytest.log" | head -40 | sed 's/^/    /' | tee -a "$SUMMARY"
exit $STATUS
