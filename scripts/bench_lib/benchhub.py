#!/usr/bin/python3
"""benchhub.py - the smallest Hub that hfmount can mount, for scripts/bench.

tests/fakehub builds its fixture in memory, so it cannot carry the 2 GiB
file the benchmark reads. This server answers, for one model repo, exactly
the routes hfmount uses (shapes from /work/shared/hub-api.md), and sends
LFS content to an external CDN stand-in (nginx) with an absolute 302:

  GET  /api/models/ID[/revision/REV]          info JSON (sha, lastModified...)
  GET  /api/models/ID/tree/REV[/PATH]         one-level or recursive listing
  GET|HEAD /ID/resolve/REV/FILE               LFS: 302 to CDN_BASE/<sha256>?X-Amz-...
                                              with X-Repo-Commit, X-Linked-Size,
                                              X-Linked-Etag; small file: relative 307
  GET|HEAD /api/resolve-cache/models/ID/SHA/FILE  the small file's bytes (Range)
  anything else                               404 with X-Error-Code

The repo holds config.json (--config-bytes, a small regular git file served
here) and one LFS file (--lfs NAME:SIZE:SHA256, served by the CDN). --delay
waits before every answer, like a far-away Hub. Standard library only;
listens on 127.0.0.1 port 0 and writes {"api": URL} to --port-file.
"""
import argparse
import hashlib
import json
import os
import re
import signal
import sys
import threading
import time
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import quote, unquote, urlencode

COMMIT = "b3ec4f0a1c2d3e4f5a6b7c8d9e0f1a2b3c4d5e6f"  # fixed 40-hex commit sha
DATE = "2025-01-02T03:04:05.000Z"
MONGO_ID = "65a0b1c2d3e4f5a6b7c8d9e0"


def git_blob_oid(data):
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


def lfs_pointer(sha256, size):
    return ("version https://git-lfs.github.com/spec/v1\noid sha256:%s\nsize %d\n"
            % (sha256, size)).encode()


def make_config(nbytes):
    """A deterministic config.json of exactly nbytes (>= 64)."""
    base = {"architectures": ["BenchModel"], "model_type": "bench", "hidden_size": 4096,
            "num_hidden_layers": 32, "torch_dtype": "bfloat16", "pad": ""}
    raw = json.dumps(base, indent=2).encode()
    base["pad"] = "x" * max(0, nbytes - len(raw) - 1)
    raw = json.dumps(base, indent=2).encode() + b"\n"
    return raw[:nbytes] if len(raw) > nbytes else raw


class Repo:
    def __init__(self, repo_id, lfs, config_bytes, cdn_base):
        self.id = repo_id
        self.cdn_base = cdn_base.rstrip("/")
        self.files = {}  # path -> dict(size, oid, sha256|None, data|None)
        data = make_config(config_bytes)
        self.files["config.json"] = {"size": len(data), "oid": git_blob_oid(data),
                                     "sha256": None, "data": data}
        for spec in lfs:
            name, size, sha = spec.split(":")
            size = int(size)
            self.files[name] = {"size": size, "oid": git_blob_oid(lfs_pointer(sha, size)),
                                "sha256": sha, "data": None,
                                "pointer_size": len(lfs_pointer(sha, size))}

    def entry(self, path):
        f = self.files[path]
        e = {"type": "file", "oid": f["oid"], "size": f["size"], "path": path}
        if f["sha256"]:
            e["lfs"] = {"oid": f["sha256"], "size": f["size"], "pointerSize": f["pointer_size"]}
        return e


class HubError(Exception):
    def __init__(self, status, message, code=None, headers=()):
        super().__init__(message)
        self.status, self.message, self.code, self.headers = status, message, code, list(headers)


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True
    server_version = "benchhub"
    sys_version = ""
    timeout = 120

    def log_message(self, fmt, *args):
        pass

    def do_GET(self):
        st = self.server
        raw_path, _, query = self.path.partition("?")
        try:
            status, headers, body = self.route(st, raw_path, query)
        except HubError as e:
            headers = [("Content-Type", "application/json; charset=utf-8")] + e.headers
            if e.code:
                headers += [("X-Error-Code", e.code), ("X-Error-Message", e.message)]
            status, body = e.status, json.dumps({"error": e.message}).encode()
        if st.delay > 0:
            time.sleep(st.delay)
        with st.lock:
            st.count += 1
            if st.log:
                st.log.write("%.6f %s %s %d %s\n" % (time.time(), self.command, raw_path, status,
                                                     self.headers.get("Range") or "-"))
                st.log.flush()
        # One write for head and body: two small writes meet Nagle and the
        # client's delayed ACK and cost 40 ms, which no real Hub adds.
        lines = ["HTTP/1.1 %d %s" % (status, HTTPStatus(status).phrase)]
        lines += ["%s: %s" % kv for kv in headers]
        lines += ["Content-Length: %d" % len(body), "Date: %s" % self.date_time_string(),
                  "X-Request-Id: Root=1-%08x-bench%d" % (int(time.time()), st.count)]
        head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
        self.wfile.write(head + (b"" if self.command == "HEAD" else body))

    do_HEAD = do_GET

    def route(self, st, raw_path, query):
        repo = st.repo
        rid = re.escape(repo.id)
        m = re.fullmatch(r"/api/models/%s(?:/revision/([^/]+))?" % rid, raw_path)
        if m:
            self.check_rev(m[1])
            info = {"_id": MONGO_ID, "id": repo.id, "modelId": repo.id, "author":
                    repo.id.split("/")[0], "sha": COMMIT, "lastModified": DATE,
                    "private": False, "gated": False, "disabled": False,
                    "siblings": [{"rfilename": p} for p in sorted(repo.files)]}
            return 200, [("Content-Type", "application/json; charset=utf-8")], \
                json.dumps(info).encode()
        m = re.fullmatch(r"/api/models/%s/tree/([^/]+)(?:/(.*))?" % rid, raw_path)
        if m:
            rev = self.check_rev(m[1])
            path = unquote(m[2] or "").strip("/")
            if path:
                raise HubError(404, '%s does not exist on "%s"' % (path, rev), "EntryNotFound")
            page = [repo.entry(p) for p in sorted(repo.files)]
            return 200, [("Content-Type", "application/json; charset=utf-8")], \
                json.dumps(page).encode()
        m = re.fullmatch(r"/%s/resolve/([^/]+)/(.+)" % rid, raw_path)
        if m:
            self.check_rev(m[1])
            path = unquote(m[2])
            f = repo.files.get(path)
            if f is None:
                raise HubError(404, "Entry not found", "EntryNotFound",
                               [("X-Repo-Commit", COMMIT)])
            if f["sha256"]:
                amz_date = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
                q = urlencode([("X-Amz-Algorithm", "AWS4-HMAC-SHA256"),
                               ("X-Amz-Date", amz_date), ("X-Amz-Expires", "3600"),
                               ("X-Amz-Signature", hashlib.sha256(
                                   (amz_date + f["sha256"]).encode()).hexdigest()),
                               ("X-Amz-SignedHeaders", "host")])
                loc = "%s/%s?%s" % (repo.cdn_base, f["sha256"], q)
                return 302, [("Location", loc), ("X-Repo-Commit", COMMIT),
                             ("X-Linked-Size", str(f["size"])),
                             ("X-Linked-Etag", '"%s"' % f["sha256"]),
                             ("Content-Type", "text/plain; charset=utf-8")], \
                    ("Found. Redirecting to %s" % loc).encode()
            loc = "/api/resolve-cache/models/%s/%s/%s?%s=&etag=%s" % (
                repo.id, COMMIT, quote(path), quote(raw_path, safe=""),
                quote('"%s"' % f["oid"], safe=""))
            return 307, [("Location", loc), ("Content-Type", "text/plain; charset=utf-8")], \
                ("Temporary Redirect. Redirecting to %s" % loc).encode()
        m = re.fullmatch(r"/api/resolve-cache/models/%s/([0-9a-f]{40})/(.+)" % rid, raw_path)
        if m and m[1] == COMMIT:
            f = repo.files.get(unquote(m[2]))
            if f is None or f["data"] is None:
                raise HubError(404, "Entry not found", "EntryNotFound",
                               [("X-Repo-Commit", COMMIT)])
            return self.serve_bytes(f["data"], [("X-Repo-Commit", COMMIT),
                                                ("ETag", '"%s"' % f["oid"]),
                                                ("Accept-Ranges", "bytes"),
                                                ("Content-Type", "application/json")])
        if raw_path.startswith("/api/whoami"):
            raise HubError(401, "Invalid credentials in Authorization header")
        raise HubError(404, "Repository not found", "RepoNotFound")

    def check_rev(self, rev):
        rev = unquote(rev or "main")
        if rev not in ("main", COMMIT):
            raise HubError(404, "Invalid rev id: %s" % rev, "RevisionNotFound")
        return rev

    def serve_bytes(self, data, headers):
        m = re.fullmatch(r"bytes=(\d*)-(\d*)", self.headers.get("Range") or "")
        if not m or (m[1] == "" and m[2] == ""):
            return 200, headers, data
        if m[1] == "":
            start, end = max(0, len(data) - int(m[2])), len(data) - 1
        else:
            start = int(m[1])
            end = min(int(m[2]), len(data) - 1) if m[2] else len(data) - 1
        if start >= len(data):
            raise HubError(416, "Requested Range Not Satisfiable", None,
                           [("Content-Range", "bytes */%d" % len(data))])
        return 206, headers + [("Content-Range", "bytes %d-%d/%d" % (start, end, len(data)))], \
            data[start:end + 1]


class Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--port-file", required=True)
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--repo", default="acme/bench")
    ap.add_argument("--lfs", action="append", default=[], help="NAME:SIZE:SHA256")
    ap.add_argument("--config-bytes", type=int, default=1024)
    ap.add_argument("--cdn-base", required=True, help="LFS redirects go to URL/<sha256>?...")
    ap.add_argument("--delay", type=float, default=0.0, help="seconds before every answer")
    ap.add_argument("--log", help="append one line per request here")
    args = ap.parse_args(argv)

    return serve(args, Handler,
                 Repo(args.repo, args.lfs, args.config_bytes, args.cdn_base))


def serve(args, handler, repo):
    """Serves repo with handler on args.host until SIGTERM/SIGINT, after
    writing args.port_file (also for loaderhub.py)."""
    srv = Server((args.host, 0), handler)
    srv.repo = repo
    srv.delay = args.delay
    srv.lock = threading.Lock()
    srv.count = 0
    srv.log = open(args.log, "a") if args.log else None
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.2},
                     daemon=True).start()
    tmp = "%s.tmp.%d" % (args.port_file, os.getpid())
    with open(tmp, "w") as f:
        json.dump({"api": "http://%s:%d" % (args.host, srv.server_address[1])}, f)
    os.replace(tmp, args.port_file)
    while not stop.wait(0.5):
        pass
    srv.shutdown()
    srv.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
