#!/usr/bin/env bash
# lmforge's GPU suite, on a bare GPU machine with no network, in under 8 minutes of wall time.
#
#   bench/gpu/run.sh [--dry-run] [--steps a,b]      (from anywhere; results in $OUT, else bench/.cache/gpu)
#
# 1. Installs the wheels carried in .whl/ (bench/gpu/fetch_wheels.py fetches them) into a folder put
#    first on PYTHONPATH, over the image's own packages: no registry is needed. lmforge itself runs
#    from src/ (PYTHONPATH), on the image's torch.
# 2. Runs bench/gpu/suite.py: every step time-boxed, results as gpu_suite.json / .md / .log in $OUT.
# --dry-run (CI, CPU): installs nothing, checks the wheel list, the time boxes and the GPU configs,
# and runs the smallest steps on the CPU.
set -u
cd "$(dirname "$0")/../.." || exit 1
root=$PWD
export LMFORGE_GPU_SUITE_START=${LMFORGE_GPU_SUITE_START:-$(date +%s)}
python=${PYTHON:-python3}
out=${OUT:-$root/bench/.cache/gpu}
site=${LMFORGE_GPU_SITE:-/tmp/lmforge-gpu-site}
mkdir -p "$out"
dry_run=0
for arg in "$@"; do [ "$arg" = --dry-run ] && dry_run=1; done
if [ "$dry_run" = 0 ]; then
    # read torch's and CUDA's libraries (gigabytes, on a cold machine's disk) while the wheels install: the first
    # attempt's env step (H100, 2026-12-05) spent its whole 25 s box importing
    timeout 60 "$python" -c 'import torch; torch.cuda.is_available()' >/dev/null 2>&1 &
fi
if [ "$dry_run" = 0 ] && compgen -G ".whl/*.whl" >/dev/null; then
    echo "installing $(ls .whl/*.whl | wc -l) carried wheels into $site" | tee -a "$out/gpu_suite.log"
    if ! timeout 45 "$python" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
            --target "$site" .whl/*.whl >>"$out/gpu_suite.log" 2>&1; then
        echo "warning: the wheel install failed or timed out (see gpu_suite.log); going on with the image's packages"
    fi
    export PYTHONPATH="$site${PYTHONPATH:+:$PYTHONPATH}"
fi
export PYTHONPATH="$root/src:$root${PYTHONPATH:+:$PYTHONPATH}"
export HF_HUB_OFFLINE=1 TOKENIZERS_PARALLELISM=false PYTHONUNBUFFERED=1
exec "$python" -m bench.gpu.suite --out "$out" "$@"
