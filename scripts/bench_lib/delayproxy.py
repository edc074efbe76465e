#!/usr/bin/python3
"""delayproxy.py - a TCP proxy that makes a loopback server look far away.

Every byte a client sends (an HTTP request) is held --delay seconds before
it is passed to the upstream, so each response's first byte arrives at
least that much later than without the proxy, on a new connection or a
kept-alive one, as across a long network path. With --rate, each
connection's responses are paced to that many bytes/s by a token bucket of
--burst bytes: nginx's limit_rate lets every request start with a burst (a
4 MiB range arrives at ~70 MiB/s under limit_rate 40m), which a long
network path does not. Responses flow back with os.splice (socket -> pipe
-> socket, no copy through Python), one thread per direction per
connection, so the proxy adds no throughput limit of its own:
scripts/bench checks that by running curl through it.

Listens on --listen (port 0) and writes {"url": "http://HOST:PORT"} to
--port-file. Standard library only (Python >= 3.10 for os.splice).
"""
import argparse
import fcntl
import json
import os
import signal
import socket
import sys
import threading
import time

F_SETPIPE_SZ = 1031
PIPE_SIZE = 1 << 20
SLICE = 128 << 10  # bytes moved per step when pacing


def pump_up(client, upstream, delay):
    """client -> upstream, each piece held until its arrival + delay."""
    try:
        while True:
            data = client.recv(65536)
            arrived = time.monotonic()
            if not data:
                break
            wait = arrived + delay - time.monotonic()
            if wait > 0:
                time.sleep(wait)
            upstream.sendall(data)
    except OSError:
        pass
    try:
        upstream.shutdown(socket.SHUT_WR)
    except OSError:
        pass


def pump_down(upstream, client, rate, burst):
    """upstream -> client through a pipe with splice(2); with rate > 0, paced by a
    token bucket of burst bytes (debt repaid by sleeping)."""
    r, w = os.pipe()
    try:
        try:
            fcntl.fcntl(w, F_SETPIPE_SZ, PIPE_SIZE)
        except OSError:
            pass
        src, dst = upstream.fileno(), client.fileno()
        step = min(PIPE_SIZE, SLICE) if rate > 0 else PIPE_SIZE
        tokens = float(burst)
        last = time.monotonic()
        while True:
            n = os.splice(src, w, step)
            if n == 0:
                break
            if rate > 0:
                now = time.monotonic()
                tokens = min(float(burst), tokens + (now - last) * rate) - n
                last = now
                if tokens < 0:
                    time.sleep(-tokens / rate)
            while n > 0:
                n -= os.splice(r, dst, n)
    except OSError:
        pass
    finally:
        os.close(r)
        os.close(w)
    try:
        client.shutdown(socket.SHUT_WR)
    except OSError:
        pass


def serve(client, upstream_addr, delay, rate, burst):
    try:
        upstream = socket.create_connection(upstream_addr)
    except OSError:
        client.close()
        return
    for s in (client, upstream):
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    up = threading.Thread(target=pump_up, args=(client, upstream, delay), daemon=True)
    up.start()
    pump_down(upstream, client, rate, burst)
    up.join()
    client.close()
    upstream.close()


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--listen", default="127.0.0.2")
    ap.add_argument("--upstream", required=True, help="HOST:PORT")
    ap.add_argument("--delay", type=float, default=0.03)
    ap.add_argument("--rate", type=float, default=0.0,
                    help="bytes/s per connection, server to client (0: no limit)")
    ap.add_argument("--burst", type=int, default=256 << 10, help="token bucket size, bytes")
    ap.add_argument("--port-file", required=True)
    args = ap.parse_args(argv)
    host, _, port = args.upstream.rpartition(":")
    upstream_addr = (host, int(port))

    lsock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    lsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    lsock.bind((args.listen, 0))
    lsock.listen(128)
    stop = threading.Event()

    def on_signal(*_):
        stop.set()
        try:
            lsock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, on_signal)

    tmp = "%s.tmp.%d" % (args.port_file, os.getpid())
    with open(tmp, "w") as f:
        json.dump({"url": "http://%s:%d" % (args.listen, lsock.getsockname()[1])}, f)
    os.replace(tmp, args.port_file)
    while not stop.is_set():
        try:
            client, _ = lsock.accept()
        except OSError:
            break
        threading.Thread(target=serve, args=(client, upstream_addr, args.delay, args.rate,
                                             args.burst), daemon=True).start()
    lsock.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
