#!/usr/bin/python3
"""randread.py - random small reads with per-read latency, for scripts/bench.

Reads --count blocks of --bs bytes at block-aligned offsets drawn from a
fixed --seed (the same offsets every run), one os.pread at a time, after
posix_fadvise(RANDOM) so the kernel adds no readahead of its own (as fio's
fadvise_hint does). Prints JSON: {"count", "bs", "p50_ms", "p99_ms",
"mean_ms", "max_ms", "seconds"}. scripts/bench uses fio when it works on the
mount and this otherwise.
"""
import argparse
import json
import os
import random
import sys
import time


def percentile(sorted_vals, p):
    if not sorted_vals:
        return None
    k = (len(sorted_vals) - 1) * p / 100.0
    lo = int(k)
    hi = min(lo + 1, len(sorted_vals) - 1)
    return sorted_vals[lo] + (sorted_vals[hi] - sorted_vals[lo]) * (k - lo)


def run(path, count, bs, seed):
    fd = os.open(path, os.O_RDONLY)
    try:
        size = os.fstat(fd).st_size
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_RANDOM)
        rng = random.Random(seed)
        blocks = max(1, size // bs)
        lat = []
        t0 = time.perf_counter()
        for _ in range(count):
            off = rng.randrange(blocks) * bs
            t = time.perf_counter()
            data = os.pread(fd, bs, off)
            lat.append(time.perf_counter() - t)
            if len(data) != min(bs, size - off):
                raise OSError("short read at %d: %d bytes" % (off, len(data)))
        total = time.perf_counter() - t0
    finally:
        os.close(fd)
    lat.sort()
    ms = [x * 1000.0 for x in lat]
    return {"count": count, "bs": bs, "p50_ms": percentile(ms, 50), "p99_ms": percentile(ms, 99),
            "mean_ms": sum(ms) / len(ms), "max_ms": ms[-1], "seconds": total}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("path")
    ap.add_argument("--count", type=int, default=1000)
    ap.add_argument("--bs", type=int, default=4096)
    ap.add_argument("--seed", type=int, default=42)
    args = ap.parse_args(argv)
    json.dump(run(args.path, args.count, args.bs, args.seed), sys.stdout)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
