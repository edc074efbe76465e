#!/usr/bin/python3
"""readtool.py - the reads scripts/bench times, one JSON line out.

  seq PATH [--bs 1M] [--cap S]   read sequentially from 0 with read() of bs
                                 bytes into one buffer, until EOF or cap
                                 seconds: {"bytes", "seconds", "eof"}
  rand PATH [--count N] [--bs 4096] [--seed 42]
                                 N os.pread of bs bytes at bs-aligned offsets
                                 from a fixed seed (the same offsets every
                                 run), after posix_fadvise(RANDOM) so the
                                 kernel adds no readahead (as fio's
                                 fadvise_hint): {"p50_ms", "p99_ms", ...}
  small PATH                     open, read to EOF, close:
                                 {"bytes", "ms"}

The clock starts at open(). scripts/bench runs this as a child process with
a timeout, so a hung mount cannot hang the benchmark; it uses fio for the
random reads when fio works on the mount and `rand` otherwise.
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


def do_seq(path, bs, cap):
    buf = bytearray(bs)
    mv = memoryview(buf)
    total = 0
    eof = False
    t0 = time.perf_counter()
    with open(path, "rb", buffering=0) as f:
        deadline = t0 + cap if cap > 0 else None
        while True:
            n = f.readinto(mv)
            if not n:
                eof = True
                break
            total += n
            if deadline is not None and time.perf_counter() >= deadline:
                break
    return {"bytes": total, "seconds": time.perf_counter() - t0, "eof": eof}


def do_rand(path, count, bs, seed):
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
    ms = sorted(x * 1000.0 for x in lat)
    return {"count": count, "bs": bs, "p50_ms": percentile(ms, 50),
            "p99_ms": percentile(ms, 99), "mean_ms": sum(ms) / len(ms), "max_ms": ms[-1],
            "seconds": total}


def do_small(path):
    t0 = time.perf_counter()
    with open(path, "rb") as f:
        data = f.read()
    return {"bytes": len(data), "ms": (time.perf_counter() - t0) * 1000.0}


def size_arg(s):
    units = {"k": 1 << 10, "m": 1 << 20, "g": 1 << 30}
    s = s.strip().lower()
    return int(s[:-1]) * units[s[-1]] if s and s[-1] in units else int(s)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("seq")
    p.add_argument("path")
    p.add_argument("--bs", type=size_arg, default=1 << 20)
    p.add_argument("--cap", type=float, default=0.0)
    p = sub.add_parser("rand")
    p.add_argument("path")
    p.add_argument("--count", type=int, default=1000)
    p.add_argument("--bs", type=size_arg, default=4096)
    p.add_argument("--seed", type=int, default=42)
    p = sub.add_parser("small")
    p.add_argument("path")
    args = ap.parse_args(argv)
    if args.cmd == "seq":
        out = do_seq(args.path, args.bs, args.cap)
    elif args.cmd == "rand":
        out = do_rand(args.path, args.count, args.bs, args.seed)
    else:
        out = do_small(args.path)
    json.dump(out, sys.stdout)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
