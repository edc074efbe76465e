#!/usr/bin/python3
"""loaderhub.py - benchhub.py with directories, for scripts/bench's loader reads.

The same routes and answers as benchhub.py (which it imports), and on top:
--tree-dir DIR adds every file under DIR as a regular git file of the repo
at its relative path (served by the Hub through resolve-cache), unless an
--lfs NAME:SIZE:SHA256 names that path, which then goes to the CDN; and
the tree listing answers for every directory, one level
(`/api/models/ID/tree/REV/PATH`): directories first, then files, by name,
as the Hub lists them. benchhub itself stays the one-directory repo the
other figures use, so its listing is unchanged.

Standard library only; listens on 127.0.0.1 port 0 and writes
{"api": URL} to --port-file.
"""
import argparse
import hashlib
import json
import os
import posixpath
import re
import signal
import sys
import threading
from urllib.parse import unquote

import benchhub


class Repo(benchhub.Repo):
    def __init__(self, repo_id, lfs, config_bytes, cdn_base, tree_dir):
        super().__init__(repo_id, lfs, config_bytes, cdn_base)
        if tree_dir:
            for top, dirs, names in os.walk(tree_dir):
                dirs.sort()
                for n in sorted(names):
                    full = os.path.join(top, n)
                    rel = os.path.relpath(full, tree_dir).replace(os.sep, "/")
                    if rel in self.files:
                        continue  # an --lfs file: its bytes are on the CDN
                    with open(full, "rb") as f:
                        data = f.read()
                    self.files[rel] = {"size": len(data), "oid": benchhub.git_blob_oid(data),
                                       "sha256": None, "data": data}
        self.dirs = {""}
        for p in self.files:
            d = posixpath.dirname(p)
            while d:
                self.dirs.add(d)
                d = posixpath.dirname(d)

    def listing(self, path):
        """One level of path (a directory), or None."""
        if path not in self.dirs:
            return None
        subdirs = sorted(d for d in self.dirs if d and posixpath.dirname(d) == path)
        files = sorted(p for p in self.files if posixpath.dirname(p) == path)
        out = [{"type": "directory", "size": 0, "path": d,
                "oid": hashlib.sha1(b"tree " + d.encode()).hexdigest()} for d in subdirs]
        return out + [self.entry(p) for p in files]


class Handler(benchhub.Handler):
    def route(self, st, raw_path, query):
        m = re.fullmatch(r"/api/models/%s/tree/([^/]+)(?:/(.*))?" % re.escape(st.repo.id),
                         raw_path)
        if not m:
            return super().route(st, raw_path, query)
        rev = self.check_rev(m[1])
        path = unquote(m[2] or "").strip("/")
        page = st.repo.listing(path)
        if page is None:
            raise benchhub.HubError(404, '%s does not exist on "%s"' % (path, rev),
                                    "EntryNotFound")
        return 200, [("Content-Type", "application/json; charset=utf-8")], \
            json.dumps(page).encode()


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--port-file", required=True)
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--repo", default="acme/loader")
    ap.add_argument("--lfs", action="append", default=[], help="PATH:SIZE:SHA256")
    ap.add_argument("--tree-dir", help="regular files of the repo, by relative path")
    ap.add_argument("--config-bytes", type=int, default=1024)
    ap.add_argument("--cdn-base", required=True, help="LFS redirects go to URL/<sha256>?...")
    ap.add_argument("--delay", type=float, default=0.0, help="seconds before every answer")
    ap.add_argument("--log", help="append one line per request here")
    args = ap.parse_args(argv)

    return benchhub.serve(args, Handler, Repo(args.repo, args.lfs, args.config_bytes,
                                              args.cdn_base, args.tree_dir))

if __name__ == "__main__":
    sys.exit(main())
