#!/usr/bin/python3
"""loadtool.py - the loader-shaped reads scripts/bench times, one JSON line out.

  mmap PATH [--shuffle SEED] [--cap S]
        mmap the safetensors file, parse its header (8-byte LE length, JSON),
        check the tensors tile the data exactly, then touch every byte's page
        of every tensor (a sum of one byte per 4 KiB and the last byte) in the
        header's order, or in a Fisher-Yates order from SEED. Stops after cap
        seconds if cap > 0. {"header_s", "first_tensor_s", "seconds", "bytes",
        "tensors", "tensors_done", "eof", "checksum"}
  ranges PATH --range OFF:LEN ...
        os.pread each range in turn (a parquet reader: footer, metadata, column
        chunks). {"first_s" (the first two ranges: footer and metadata),
        "seconds", "bytes", "checksum"}
  files ROOT --list FILE [--threads N]
        open, read to EOF and close every path of FILE (one a line, relative
        to ROOT), in order with one thread, or from a queue with N.
        {"seconds", "bytes", "files", "checksum"}

The clock starts at the first open(). The checksums let scripts/bench check
that the three ways read the same bytes. It runs this as a child process with
a timeout, so a hung mount cannot hang the benchmark.
"""
import argparse
import json
import mmap
import os
import queue
import sys
import threading
import time
import zlib

from loaderdata import shuffled

PAGE = 4096


def st_tensors(mm, size):
    """[(name, start, end)] in the header's order, absolute offsets; ValueError if the
    file is not a valid safetensors file."""
    if size < 8:
        raise ValueError("shorter than 8 bytes")
    n = int.from_bytes(mm[0:8], "little")
    if n <= 0 or 8 + n > size:
        raise ValueError("bad header length %d" % n)
    hdr = json.loads(mm[8:8 + n])
    base = 8 + n
    out = []
    for name, t in hdr.items():
        if name == "__metadata__":
            continue
        b, e = t["data_offsets"]
        out.append((name, base + b, base + e))
    spans = sorted((b, e) for _, b, e in out)
    pos = base
    for b, e in spans:
        if b != pos or e < b:
            raise ValueError("tensors do not tile the data at offset %d" % pos)
        pos = e
    if pos != size:
        raise ValueError("data ends at %d, file at %d" % (pos, size))
    return out


def do_mmap(path, seed, cap):
    t0 = time.perf_counter()
    fd = os.open(path, os.O_RDONLY)
    try:
        size = os.fstat(fd).st_size
        mm = mmap.mmap(fd, size, prot=mmap.PROT_READ)
    finally:
        os.close(fd)
    try:
        tensors = st_tensors(mm, size)
        t_header = time.perf_counter() - t0
        order = range(len(tensors)) if seed is None else shuffled(len(tensors), seed)
        total = 0
        done = 0
        first = None
        deadline = t0 + cap if cap > 0 else None
        for i in order:
            _, b, e = tensors[i]
            if e > b:
                total = (total + sum(mm[b:e:PAGE]) + mm[e - 1]) & 0xFFFFFFFFFFFFFFFF
            done += 1
            if first is None:
                first = time.perf_counter() - t0
            if deadline is not None and time.perf_counter() >= deadline:
                break
        secs = time.perf_counter() - t0
        nbytes = sum(tensors[i][2] - tensors[i][1] for i in list(order)[:done])
    finally:
        mm.close()
    return {"header_s": t_header, "first_tensor_s": first, "seconds": secs, "bytes": nbytes,
            "tensors": len(tensors), "tensors_done": done, "eof": done == len(tensors),
            "checksum": total}


def do_ranges(path, ranges):
    t0 = time.perf_counter()
    fd = os.open(path, os.O_RDONLY)
    crc = 0
    nbytes = 0
    first = None
    try:
        for k, (off, n) in enumerate(ranges):
            data = os.pread(fd, n, off)
            if len(data) != n:
                raise OSError("short read at %d: %d of %d bytes" % (off, len(data), n))
            crc = zlib.crc32(data, crc)
            nbytes += n
            if k == 1:
                first = time.perf_counter() - t0
    finally:
        os.close(fd)
    return {"first_s": first, "seconds": time.perf_counter() - t0, "bytes": nbytes,
            "checksum": crc}


def read_one(path):
    with open(path, "rb") as f:
        data = f.read()
    return len(data), zlib.crc32(data)


def do_files(root, paths, threads):
    t0 = time.perf_counter()
    results = {}
    if threads <= 1:
        for p in paths:
            results[p] = read_one(os.path.join(root, p))
    else:
        q = queue.Queue()
        for p in paths:
            q.put(p)
        errors = []

        def worker():
            while True:
                try:
                    p = q.get_nowait()
                except queue.Empty:
                    return
                try:
                    results[p] = read_one(os.path.join(root, p))
                except OSError as e:
                    errors.append("%s: %s" % (p, e))

        ts = [threading.Thread(target=worker) for _ in range(threads)]
        for t in ts:
            t.start()
        for t in ts:
            t.join()
        if errors:
            raise OSError("; ".join(errors[:5]))
    secs = time.perf_counter() - t0
    crc = 0
    for p in paths:  # in list order, whatever order the threads read in
        crc = zlib.crc32(b"%d:%d;" % results[p], crc)
    return {"seconds": secs, "bytes": sum(n for n, _ in results.values()),
            "files": len(results), "checksum": crc}


def range_arg(s):
    off, _, n = s.partition(":")
    return int(off), int(n)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("mmap")
    p.add_argument("path")
    p.add_argument("--shuffle", type=int, metavar="SEED")
    p.add_argument("--cap", type=float, default=0.0)
    p = sub.add_parser("ranges")
    p.add_argument("path")
    p.add_argument("--range", type=range_arg, action="append", required=True)
    p = sub.add_parser("files")
    p.add_argument("root")
    p.add_argument("--list", required=True)
    p.add_argument("--threads", type=int, default=1)
    args = ap.parse_args(argv)
    if args.cmd == "mmap":
        out = do_mmap(args.path, args.shuffle, args.cap)
    elif args.cmd == "ranges":
        out = do_ranges(args.path, args.range)
    else:
        with open(args.list) as f:
            paths = [l.strip() for l in f if l.strip()]
        out = do_files(args.root, paths, args.threads)
    json.dump(out, sys.stdout)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
