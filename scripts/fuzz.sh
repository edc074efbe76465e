#!/bin/sh
# fuzz.sh - build the libFuzzer targets with clang and fuzz each one.
#
# Usage: scripts/fuzz.sh [SECONDS] [PARSER...]
#   SECONDS  per target, default 60 (CI's budget)
#   PARSER   e.g. "tree link": only those targets (default: every
#            tests/fuzz/fuzz_*.c)
# Env: HFM_FUZZ_BUILD  build directory (default build-fuzz/ in the checkout)
#
# Configures a separate build with CC=clang and -DHFM_FUZZ=ON. All C code,
# the library under test included, is compiled with
# -fsanitize=fuzzer-no-link,address,undefined so libFuzzer sees its coverage
# and ASan/UBSan stop at the first fault. Each target starts from its seeds
# in tests/fuzz/corpus/<parser>/ (read only) plus a scratch corpus in the
# build directory, where new inputs go. A crash, leak, timeout or sanitizer
# report fails the run: the reproducer is left in <build>/artifacts/; fix
# the bug and add the reproducer to tests/fuzz/corpus/<parser>/.
set -eu

secs=${1:-60}
[ $# -gt 0 ] && shift
case $secs in
'' | *[!0-9]*)
    echo "fuzz.sh: SECONDS must be a number, not '$secs'" >&2
    exit 2
    ;;
esac

root=$(cd "$(dirname "$0")/.." && pwd)
build=${HFM_FUZZ_BUILD:-$root/build-fuzz}
san="-fsanitize=fuzzer-no-link,address,undefined -fno-sanitize-recover=all"
san="$san -fno-omit-frame-pointer"

command -v clang >/dev/null || {
    echo "fuzz.sh: clang not found (apt install clang libclang-rt-dev)" >&2
    exit 2
}

targets=
for src in "$root"/tests/fuzz/fuzz_*.c; do
    [ -e "$src" ] || continue
    name=$(basename "$src" .c)
    if [ $# -gt 0 ]; then
        want=no
        for p in "$@"; do
            [ "fuzz_$p" = "$name" ] && want=yes
        done
        [ $want = yes ] || continue
    fi
    targets="$targets $name"
done
if [ -z "$targets" ]; then
    echo "fuzz.sh: no fuzz targets selected" >&2
    exit 2
fi

CC=clang cmake -S "$root" -B "$build" -DHFM_FUZZ=ON \
    -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DCMAKE_C_FLAGS="$san" \
    -DCMAKE_EXE_LINKER_FLAGS="-fsanitize=address,undefined" >/dev/null
for name in $targets; do
    cmake --build "$build" -j2 --target "$name" >/dev/null
done

mkdir -p "$build/artifacts"
failed=
for name in $targets; do
    parser=${name#fuzz_}
    work="$build/corpus/$parser"
    seeds="$root/tests/fuzz/corpus/$parser"
    log="$build/$name.log"
    mkdir -p "$work"
    set -- "$work"
    [ -d "$seeds" ] && set -- "$work" "$seeds"
    if "$build/$name" -max_total_time="$secs" -timeout=10 \
        -rss_limit_mb=2048 -print_final_stats=1 \
        -artifact_prefix="$build/artifacts/$name-" "$@" >"$log" 2>&1; then
        runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")
        echo "fuzz.sh: $name ok: ${runs:-?} runs in ${secs}s"
    else
        echo "fuzz.sh: $name FAILED; log $log, reproducer in $build/artifacts/" >&2
        grep -E 'ERROR|SUMMARY|runtime error' "$log" | head -5 >&2 || true
        failed="$failed $name"
    fi
done

if [ -n "$failed" ]; then
    echo "fuzz.sh: failed:$failed" >&2
    exit 1
fi
exit 0
