#!/usr/bin/env bash
# Runs every test of hfmount, as CI does:
#   1. source checks, a -Werror build, unit tests and fuzz corpora (ctest)
#   2. the fake Hub's self-tests and the official JS client against it
#   3. the end-to-end suite: real mounts against the fake Hub
#   4. the end-to-end suite again under ASan+UBSan, the concurrency tests
#      under TSan, and each libFuzzer target for HFM_FUZZ_SECONDS (60)
# HFM_QUICK=1 stops after step 3 (for a quick local run).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=/usr/bin/python3

scripts/deps.sh
scripts/checksrc.sh
BUILD_DIR=build scripts/build.sh -DHFM_WERROR=ON
ctest --test-dir build --output-on-failure

# the official JS clients: @huggingface/hub against the fake Hub (tests/js),
# transformers.js and gguf reading mounted files (tests/jslibs), and the
# loaders run on mounted paths: llama.cpp (node-llama-cpp) and DuckDB
# (tests/loaders/*); all from the npm registry, pinned by their lock files
for d in tests/js tests/jslibs tests/loaders/llama tests/loaders/duckdb; do
    if [ ! -d "$d/node_modules" ]; then
        if [ -f "$d/package-lock.json" ]; then
            NODE_LLAMA_CPP_SKIP_DOWNLOAD=true npm ci --prefix "$d" \
                --no-audit --no-fund --loglevel=error >/dev/null
        else
            npm install --prefix "$d" --no-audit --no-fund --loglevel=error >/dev/null
        fi
    fi
done
$PY -m pytest -q -p no:cacheprovider tests/fakehub tests/e2e
[ "${HFM_QUICK:-0}" = 1 ] && exit 0

echo "== ASan+UBSan build: unit and end-to-end tests"
BUILD_DIR=build-asan scripts/build.sh -DHFM_WERROR=ON -DHFM_SANITIZE=ON
ctest --test-dir build-asan --output-on-failure
HFMOUNT_BIN=build-asan/hfmount $PY -m pytest -q -p no:cacheprovider tests/e2e

echo "== TSan build: concurrency tests"
BUILD_DIR=build-tsan scripts/build.sh -DHFM_TSAN=ON
HFMOUNT_BIN=build-tsan/hfmount TSAN_OPTIONS="halt_on_error=1" \
    $PY -m pytest -q -p no:cacheprovider -m concurrency tests/e2e

echo "== fuzzing"
scripts/fuzz.sh "${HFM_FUZZ_SECONDS:-60}"
