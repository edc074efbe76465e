"""Self-test of tests/fakehub: run with /usr/bin/python3 -m pytest tests/fakehub -q

Starts fakehub.py as a subprocess (always terminated), then checks every behaviour README.md
promises with http.client and raw sockets. Expected values come from fixture.py, and the
expected Hub behaviour from shared/hub-api.md. Every blocking step has a timeout.
"""

import base64
import hashlib
import http.client
import io
import json
import math
import os
import re
import socket
import struct
import subprocess
import sys
import tarfile
import time
from urllib.parse import quote, urlsplit

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import fixture as fixture_mod  # noqa: E402

PYTHON = "/usr/bin/python3" if os.path.exists("/usr/bin/python3") else sys.executable
TIMEOUT = 10
FX = fixture_mod.build()
TINY = FX.repo("model", "acme/tiny")
MAIN = TINY.commits[TINY.refs["main"]]
M0, M2, M3 = (TINY.commits[TINY.refs[r]] for r in ("v1.0", "dev", "refs/pr/1"))
LLAMA = "meta-llama/Llama-3.1-8B-Instruct"

ALICE = "hf_alice_read_0123456789abcdef"
ALICE_FG_NOGATED = "hf_alice_fg_nogated_0123456789"
ALICE_FG_NOREPO = "hf_alice_fg_norepo_0123456789a"
BOB = "hf_bob_read_0123456789abcdef01"
CAROL = "hf_carol_read_0123456789abcdef"
DAVE = "hf_org_policy_0123456789abcdef"

MSG_FG = ("Please enable access to public gated repositories in your fine-grained token settings "
          "to view this repository.")
MSG_ORG = ("Due to the organization token policy, your token needs to be approved by the "
           "organization before you can access this resource.")


class Answer:
    def __init__(self, resp, body):
        self.status = resp.status
        self.headers = resp.headers
        self.body = body

    def h(self, name):
        return self.headers.get(name)

    def json(self):
        return json.loads(self.body)


class Hub:
    """A running fakehub subprocess."""

    def __init__(self, tmp, args=()):
        self.port_file = os.path.join(tmp, "ports.json")
        self.stderr = open(os.path.join(tmp, "stderr.txt"), "w+")
        t0 = time.monotonic()
        self.proc = subprocess.Popen(
            [PYTHON, os.path.join(HERE, "fakehub.py"), "--port-file", self.port_file, "--quiet"]
            + list(args), stdout=subprocess.DEVNULL, stderr=self.stderr)
        deadline = t0 + TIMEOUT
        while not os.path.exists(self.port_file):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError("fakehub did not start: " + self.read_stderr())
            time.sleep(0.02)
        self.startup = time.monotonic() - t0
        with open(self.port_file) as f:
            self.urls = json.load(f)
        self.api = urlsplit(self.urls["api"])
        self.cdn = urlsplit(self.urls["cdn"])

    def read_stderr(self):
        self.stderr.seek(0)
        return self.stderr.read()

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(TIMEOUT)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(TIMEOUT)
        self.stderr.close()

    def conn(self, origin="api", timeout=TIMEOUT):
        u = self.api if origin == "api" else self.cdn
        return http.client.HTTPConnection(u.hostname, u.port, timeout=timeout)

    def req(self, method, target, headers=None, body=None, token=None, conn=None):
        """One request; `target` is a path on the api origin or an absolute URL."""
        origin = "api"
        if target.startswith("http"):
            u = urlsplit(target)
            origin = "cdn" if u.netloc == self.cdn.netloc else "api"
            target = u.path + ("?" + u.query if u.query else "")
        headers = dict(headers or {})
        if token:
            headers["Authorization"] = "Bearer " + token
        c = conn or self.conn(origin)
        try:
            c.request(method, target, body=body, headers=headers)
            resp = c.getresponse()
            return Answer(resp, resp.read())
        finally:
            if conn is None:
                c.close()

    def get(self, target, **kw):
        return self.req("GET", target, **kw)

    def head(self, target, **kw):
        return self.req("HEAD", target, **kw)

    def ctl(self, path, body=None):
        if body is None:
            a = self.get("/_fake/" + path)
        else:
            a = self.req("POST", "/_fake/" + path, body=json.dumps(body),
                         headers={"Content-Type": "application/json"})
        assert a.status == 200, (path, a.status, a.body)
        return a.json()

    def raw(self, origin, data, timeout=TIMEOUT):
        """Sends raw bytes; returns the socket (caller reads and closes)."""
        u = self.api if origin == "api" else self.cdn
        s = socket.create_connection((u.hostname, u.port), timeout=timeout)
        s.sendall(data)
        return s


@pytest.fixture(scope="module")
def hub(tmp_path_factory):
    h = Hub(str(tmp_path_factory.mktemp("fakehub")))
    try:
        yield h
    finally:
        h.stop()


@pytest.fixture(autouse=True)
def fresh(hub):
    hub.ctl("reset", {})
    yield


def follow_pages(hub, target, token=None):
    pages = []
    while target:
        a = hub.get(target, token=token)
        assert a.status == 200, (target, a.status, a.body)
        pages.append(a.json())
        link = a.h("Link")
        target = None
        if link:
            m = re.fullmatch(r'<([^>]+)>; rel="next"', link)
            assert m, link
            assert m[1].startswith(hub.urls["api"] + "/"), "Link must be absolute, same origin"
            target = m[1]
    return pages


def read_head(sock):
    """Reads a raw HTTP answer head; returns (status, {lower name: value}, leftover body)."""
    buf = b""
    while b"\r\n\r\n" not in buf:
        chunk = sock.recv(65536)
        if not chunk:
            break
        buf += chunk
    head, _, rest = buf.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = {}
    for line in lines[1:]:
        k, _, v = line.partition(":")
        headers[k.strip().lower()] = v.strip()
    return int(lines[0].split()[1]), headers, rest


def cdn_url(hub, path="model.safetensors", token=None):
    a = hub.head("/acme/tiny/resolve/main/" + path, token=token)
    assert a.status == 302
    return a.h("Location")


# ---------------------------------------------------------------------------------------------
# Startup and fixture content


def test_startup_is_fast_and_port_file_names_both_origins(hub):
    assert hub.startup < 2.0, "startup took %.2f s" % hub.startup
    assert hub.api.hostname == "127.0.0.1" and hub.cdn.hostname == "127.0.0.2"
    assert hub.api.port and hub.cdn.port


def test_fixture_is_deterministic_and_git_hashed():
    again = fixture_mod.build()
    for r in FX.repos:
        r2 = again.repo(r.type, r.id)
        for sha, c in r.commits.items():
            c2 = r2.commits[sha]
            assert {p: b.oid for p, b in c.files.items()} == {p: b.oid for p, b in c2.files.items()}
            assert c.dirs == c2.dirs
    cfg = MAIN.files["config.json"]
    assert cfg.oid == hashlib.sha1(b"blob %d\0" % cfg.size + cfg.data).hexdigest()
    st = MAIN.files["model.safetensors"]
    assert st.lfs and st.sha256 == hashlib.sha256(st.data).hexdigest()
    assert st.pointer == ("version https://git-lfs.github.com/spec/v1\noid sha256:%s\nsize %d\n"
                          % (st.sha256, st.size)).encode()
    assert st.oid == hashlib.sha1(b"blob %d\0" % len(st.pointer) + st.pointer).hexdigest()
    assert len({M0.sha, MAIN.sha, M2.sha, M3.sha}) == 4
    assert len({M0.date, MAIN.date, M2.date, M3.date}) == 4
    assert set(MAIN.children["many"]) == {("f%04d.txt" % i, False) for i in range(1500)}


def test_fixture_safetensors_is_valid():
    data = MAIN.files["model.safetensors"].data
    (n,) = struct.unpack("<Q", data[:8])
    assert (8 + n) % 8 == 0
    header = json.loads(data[8:8 + n])
    assert header["__metadata__"] == {"format": "pt"}
    assert header["embed"] == {"dtype": "F32", "shape": [1024, 4096],
                               "data_offsets": [0, 1024 * 4096 * 4]}
    assert header["bias"]["shape"] == [4096]
    body = data[8 + n:]
    assert len(body) == header["bias"]["data_offsets"][1]
    sample = struct.unpack("<4096f", body[:16384]) + struct.unpack("<4096f", body[-16384:])
    assert all(math.isfinite(x) and abs(x) < 2 for x in sample)


def test_fixture_gguf_tar_and_tokenizer_are_valid():
    g = MAIN.files["tiny.gguf"].data
    assert g[:4] == b"GGUF"
    version, n_tensors, n_kv = struct.unpack("<IQQ", g[4:24])
    assert (version, n_tensors, n_kv) == (3, 1, 4)
    (klen,) = struct.unpack("<Q", g[24:32])
    assert g[32:32 + klen] == b"general.architecture"
    assert b"llama" in g and b"general.name" in g

    tar = tarfile.open(fileobj=io.BytesIO(MAIN.files["archive.tar"].data))
    files = [m for m in tar.getmembers() if m.isfile()]
    assert len(files) == 3 and all(m.mtime == 1704067200 for m in tar.getmembers())

    tok = json.loads(MAIN.files["tokenizer.json"].data)
    assert tok["model"]["type"] == "WordLevel" and tok["pre_tokenizer"]["type"] == "Whitespace"
    vocab = tok["model"]["vocab"]
    assert [vocab[w] for w in "hello world".split()] == [1, 2] and vocab["[UNK]"] == 0
    assert json.loads(MAIN.files["tokenizer_config.json"].data)["unk_token"] == "[UNK]"


def test_fixture_endpoint_matches_module(hub):
    out = hub.ctl("fixture")
    tiny = next(r for r in out["repos"] if r["id"] == "acme/tiny")
    assert tiny["refs"] == TINY.refs
    files = tiny["commits"][MAIN.sha]["files"]
    assert files["model.safetensors"] == {"size": MAIN.files["model.safetensors"].size,
                                          "oid": MAIN.files["model.safetensors"].oid,
                                          "sha256": MAIN.files["model.safetensors"].sha256,
                                          "xet_hash": None}
    assert files["tiny.gguf"]["xet_hash"] == MAIN.files["tiny.gguf"].xet_hash
    assert files["config.json"]["sha256"] is None
    assert tiny["commits"][MAIN.sha]["date"] == MAIN.date


# ---------------------------------------------------------------------------------------------
# Info


def test_info_default_branch(hub):
    a = hub.get("/api/models/acme/tiny")
    assert a.status == 200 and a.h("Content-Type").startswith("application/json")
    info = a.json()
    for k in ("_id", "id", "sha", "lastModified", "private", "gated", "disabled", "siblings"):
        assert k in info
    assert info["id"] == "acme/tiny" and info["sha"] == MAIN.sha
    assert info["lastModified"] == MAIN.date
    assert (info["private"], info["gated"], info["disabled"]) == (False, False, False)
    assert sorted(s["rfilename"] for s in info["siblings"]) == sorted(MAIN.files)
    assert a.h("X-Request-Id").startswith("Root=1-")
    assert a.h("RateLimit").startswith('"api";r=') and "q=500;w=300" in a.h("RateLimit-Policy")


def test_info_revisions(hub):
    for rev, commit in [("refs%2Fpr%2F1", M3), ("v1.0", M0), ("dev", M2), (M2.sha, M2),
                        ("HEAD", MAIN), ("main", MAIN)]:
        info = hub.get("/api/models/acme/tiny/revision/" + rev).json()
        assert info["sha"] == commit.sha, rev
        assert info["lastModified"] == commit.date
    gated = hub.get("/api/models/%s" % LLAMA).json()
    assert gated["gated"] == "manual"
    assert hub.get("/api/datasets/acme/gated-data").json()["gated"] == "auto"


def test_info_unknown_or_unencoded_revision_is_404(hub):
    a = hub.get("/api/models/acme/tiny/revision/nope")
    assert a.status == 404 and a.h("X-Error-Code") == "RevisionNotFound"
    assert a.h("X-Error-Message") == "Invalid rev id: nope"
    assert a.json() == {"error": "Invalid rev id: nope"}
    assert hub.get("/api/models/acme/tiny/revision/refs/pr/1").status == 404
    assert hub.get("/api/models/acme/tiny/revision/%s" % MAIN.sha[:7]).status == 404


def test_info_blobs_and_expand(hub):
    info = hub.get("/api/models/acme/tiny?blobs=true").json()
    sib = {s["rfilename"]: s for s in info["siblings"]}
    st = MAIN.files["model.safetensors"]
    assert sib["model.safetensors"]["lfs"] == {"sha256": st.sha256, "size": st.size,
                                               "pointerSize": len(st.pointer)}
    assert sib["config.json"]["blobId"] == MAIN.files["config.json"].oid
    only = hub.get("/api/models/acme/tiny?expand=sha&expand=private").json()
    assert set(only) == {"_id", "id", "sha", "private"}


def test_head_carries_get_content_length(hub):
    for target in ["/api/models/acme/tiny", "/acme/tiny/resolve/main/config.json",
                   "/acme/tiny/resolve/main/model.safetensors",
                   "/api/models/acme/tiny/revision/nope"]:
        g, h = hub.get(target), hub.head(target)
        assert h.status == g.status and h.body == b""
        assert h.h("Content-Length") == g.h("Content-Length") == str(len(g.body))


def test_keep_alive_serves_many_requests_on_one_connection(hub):
    c = hub.conn()
    try:
        for target in ["/api/models/acme/tiny", "/acme/tiny/resolve/main/config.json",
                       "/api/models/acme/tiny/tree/main", "/api/models/nope/nope"]:
            for method in ("HEAD", "GET"):
                a = hub.req(method, target, conn=c)
                assert a.status in (200, 307, 401)
                assert len(a.body) == (0 if method == "HEAD" else int(a.h("Content-Length")))
    finally:
        c.close()
    rows = hub.ctl("requests")
    assert len(rows) == 8


# ---------------------------------------------------------------------------------------------
# Tree


def test_tree_root_one_level(hub):
    entries = hub.get("/api/models/acme/tiny/tree/main").json()
    dirs = [e for e in entries if e["type"] == "directory"]
    files = [e for e in entries if e["type"] == "file"]
    assert entries == dirs + files, "directories first"
    assert [e["path"] for e in dirs] == sorted(e["path"] for e in dirs)
    assert [e["path"] for e in files] == sorted(e["path"] for e in files)
    assert {e["path"] for e in dirs} == {"dir with space", "many", "nested"}
    for d in dirs:
        assert d["size"] == 0 and d["oid"] == MAIN.dirs[d["path"]]
    st = next(e for e in files if e["path"] == "model.safetensors")
    b = MAIN.files["model.safetensors"]
    assert st == {"type": "file", "oid": b.oid, "size": b.size, "path": "model.safetensors",
                  "lfs": {"oid": b.sha256, "size": b.size, "pointerSize": len(b.pointer)}}
    cfg = next(e for e in files if e["path"] == "config.json")
    assert "lfs" not in cfg and cfg["oid"] == MAIN.files["config.json"].oid


def test_tree_1500_entries_come_as_1000_plus_500(hub):
    pages = follow_pages(hub, "/api/models/acme/tiny/tree/main/many")
    assert [len(p) for p in pages] == [1000, 500]
    paths = [e["path"] for p in pages for e in p]
    assert paths == ["many/f%04d.txt" % i for i in range(1500)]
    link = hub.get("/api/models/acme/tiny/tree/main/many").h("Link")
    cursor = re.search(r"cursor=([^&>]+)", link)[1]
    decoded = base64.b64decode(cursor.replace("%3D", "=")).decode()
    assert decoded.endswith(":1000")


def test_tree_recursive_lists_everything_once(hub):
    pages = follow_pages(hub, "/api/models/acme/tiny/tree/main?recursive=true")
    entries = [e for p in pages for e in p]
    paths = [e["path"] for e in entries]
    assert len(paths) == len(set(paths))
    assert {e["path"] for e in entries if e["type"] == "file"} == set(MAIN.files)
    assert {e["path"] for e in entries if e["type"] == "directory"} == set(MAIN.dirs) - {""}
    seen = set()
    for p in paths:  # a directory comes before what it holds
        if "/" in p:
            assert p.rsplit("/", 1)[0] in seen, p
        seen.add(p)


def test_tree_path_encodings_agree(hub):
    a = hub.get("/api/models/acme/tiny/tree/main/nested/a").json()
    b = hub.get("/api/models/acme/tiny/tree/main/nested%2Fa").json()
    assert a == b and [e["path"] for e in a] == ["nested/a/b", "nested/a/info.json"]
    c = hub.get("/api/models/acme/tiny/tree/refs%2Fpr%2F1").json()
    assert "pr-only.txt" in [e["path"] for e in c]
    d = hub.get("/api/models/acme/tiny/tree/main/dir%20with%20space").json()
    assert [e["path"] for e in d] == ["dir with space/file #1?.txt"]


def test_tree_missing_path_and_revision(hub):
    a = hub.get("/api/models/acme/tiny/tree/main/nope")
    assert a.status == 404 and a.h("X-Error-Code") == "EntryNotFound"
    assert a.json() == {"error": 'nope does not exist on "main"'}
    b = hub.get("/api/models/acme/tiny/tree/v1.0/many")
    assert b.status == 404 and b.h("X-Error-Code") == "EntryNotFound"
    c = hub.get("/api/models/acme/tiny/tree/nope")
    assert c.status == 404 and c.h("X-Error-Code") == "RevisionNotFound"


def test_tree_expand_pages_of_50_with_last_commit(hub):
    a = hub.get("/api/models/acme/tiny/tree/main/many?expand=true")
    assert len(a.json()) == 50 and 'rel="next"' in a.h("Link")
    assert "expand=true" in a.h("Link") and "limit=50" in a.h("Link")
    e = a.json()[0]
    assert e["lastCommit"] == {"id": MAIN.sha, "title": MAIN.title, "date": MAIN.date}
    root = {e["path"]: e for e in hub.get("/api/models/acme/tiny/tree/main?expand=1").json()}
    assert root["README.md"]["lastCommit"]["id"] == M0.sha
    assert root["config.json"]["lastCommit"]["id"] == MAIN.sha


def test_tree_limit_and_bad_cursor(hub):
    pages = follow_pages(hub, "/api/models/acme/tiny/tree/main/nested/a?limit=1")
    assert [len(p) for p in pages] == [1, 1]
    a = hub.get("/api/models/acme/tiny/tree/main/many?cursor=%%%garbage")
    assert a.status == 400


def test_page_size_setting(hub):
    hub.ctl("settings", {"page_size": 400})
    assert [len(p) for p in follow_pages(hub, "/api/models/acme/tiny/tree/main/many")] == \
        [400, 400, 400, 300]


# ---------------------------------------------------------------------------------------------
# paths-info, refs, auth-check


def test_paths_info_form_and_json(hub):
    form = "paths=config.json&paths=nested&paths=nope&expand=false"
    a = hub.req("POST", "/api/models/acme/tiny/paths-info/main", body=form,
                headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert a.status == 200
    got = {e["path"]: e for e in a.json()}
    assert set(got) == {"config.json", "nested"}
    assert got["nested"]["type"] == "directory" and got["nested"]["oid"] == MAIN.dirs["nested"]
    b = hub.req("POST", "/api/models/acme/tiny/paths-info/refs%2Fpr%2F1",
                body=json.dumps({"paths": ["config.json"], "expand": True}),
                headers={"Content-Type": "application/json"})
    (e,) = b.json()
    assert e["oid"] == M3.files["config.json"].oid and e["lastCommit"]["id"] == M3.sha
    bad = hub.req("POST", "/api/models/acme/tiny/paths-info/main", body=b'{"paths": 3}',
                  headers={"Content-Type": "application/json"})
    assert bad.status == 400


def test_refs_and_auth_check(hub):
    refs = hub.get("/api/models/acme/tiny/refs?include_prs=1").json()
    assert {b["name"]: b["targetCommit"] for b in refs["branches"]} == {"main": MAIN.sha,
                                                                       "dev": M2.sha}
    assert refs["tags"] == [{"name": "v1.0", "ref": "refs/tags/v1.0", "targetCommit": M0.sha}]
    assert refs["pullRequests"][0]["name"] == "refs/pr/1"
    assert hub.get("/api/models/acme/tiny/auth-check").status == 200
    assert hub.get("/api/models/%s/auth-check" % LLAMA, token=BOB).status == 403


# ---------------------------------------------------------------------------------------------
# Resolve and CDN


def test_resolve_regular_file_307_to_resolve_cache(hub):
    a = hub.head("/acme/tiny/resolve/main/config.json")
    assert a.status == 307
    loc = a.h("Location")
    assert loc.startswith("/api/resolve-cache/models/acme/tiny/%s/config.json?" % MAIN.sha)
    assert "etag=%22" + MAIN.files["config.json"].oid + "%22" in loc
    assert a.h("RateLimit").startswith('"resolvers";')
    b = hub.get(loc)
    cfg = MAIN.files["config.json"]
    assert b.status == 200 and b.body == cfg.data
    assert b.h("ETag") == '"%s"' % cfg.oid and b.h("X-Repo-Commit") == MAIN.sha
    assert b.h("Content-Length") == str(cfg.size) and b.h("Accept-Ranges") == "bytes"
    c = hub.get(loc, headers={"Range": "bytes=2-5"})
    assert c.status == 206 and c.body == cfg.data[2:6]
    assert c.h("Content-Range") == "bytes 2-5/%d" % cfg.size


def test_resolve_other_revisions_and_reserved_paths(hub):
    a = hub.head("/acme/tiny/resolve/refs%2Fpr%2F1/pr-only.txt")
    assert a.status == 307 and M3.sha in a.h("Location")
    assert hub.get(a.h("Location")).body == M3.files["pr-only.txt"].data
    path = "dir with space/file #1?.txt"
    b = hub.head("/acme/tiny/resolve/main/" + quote(path))
    assert b.status == 307
    assert hub.get(b.h("Location")).body == MAIN.files[path].data
    assert hub.head("/acme/tiny/resolve/v1.0/many/f0000.txt").status == 404
    d = hub.head("/datasets/acme/data/resolve/main/data/train.csv")
    assert d.status == 307 and d.h("Location").startswith("/api/resolve-cache/datasets/acme/data/")
    s = hub.head("/spaces/acme/demo/resolve/main/app.py")
    assert s.status == 307


def test_resolve_missing_file(hub):
    a = hub.head("/acme/tiny/resolve/main/nope.txt")
    assert a.status == 404 and a.h("X-Error-Code") == "EntryNotFound"
    assert a.h("X-Error-Message") == "Entry not found" and a.h("X-Repo-Commit") == MAIN.sha
    b = hub.head("/acme/tiny/resolve/nope/config.json")
    assert b.status == 404 and b.h("X-Error-Code") == "RevisionNotFound"


def test_resolve_lfs_302_to_signed_cdn(hub):
    a = hub.head("/acme/tiny/resolve/main/model.safetensors")
    b = MAIN.files["model.safetensors"]
    assert a.status == 302
    assert a.h("X-Repo-Commit") == MAIN.sha and a.h("X-Linked-Size") == str(b.size)
    assert a.h("X-Linked-Etag") == '"%s"' % b.sha256 and a.h("ETag") is None
    loc = a.h("Location")
    assert loc.startswith(hub.urls["cdn"] + "/repos/") and b.sha256 in loc
    for p in ("X-Amz-Algorithm=AWS4-HMAC-SHA256", "X-Amz-Date=", "X-Amz-Expires=3600",
              "X-Amz-Signature="):
        assert p in loc
    full = hub.get(loc)
    assert full.status == 200 and hashlib.sha256(full.body).hexdigest() == b.sha256
    assert full.h("Content-Length") == str(b.size) and full.h("Accept-Ranges") == "bytes"
    assert full.h("X-Request-Id") is None and full.h("RateLimit") is None
    head = hub.head(loc)
    assert head.status == 200 and head.h("Content-Length") == str(b.size) and head.body == b""
    part = hub.get(loc, headers={"Range": "bytes=100-199"})
    assert part.status == 206 and part.body == b.data[100:200]
    assert part.h("Content-Range") == "bytes 100-199/%d" % b.size
    tail = hub.get(loc, headers={"Range": "bytes=-10"})
    assert tail.status == 206 and tail.body == b.data[-10:]
    past = hub.get(loc, headers={"Range": "bytes=%d-" % b.size})
    assert past.status == 416 and past.h("Content-Range") == "bytes */%d" % b.size
    assert b"<Code>InvalidRange</Code>" in past.body


def test_xet_file_markers_bridge_and_fileinfo(hub):
    b = MAIN.files["tiny.gguf"]
    assert b.xet_hash and b.xet_hash != b.sha256
    tree = {e["path"]: e for e in hub.get("/api/models/acme/tiny/tree/main").json()}
    assert tree["tiny.gguf"]["xetHash"] == b.xet_hash
    assert tree["tiny.gguf"]["lfs"]["oid"] == b.sha256
    assert "xetHash" not in tree["model.safetensors"]
    a = hub.head("/acme/tiny/resolve/main/tiny.gguf")
    assert a.status == 302 and a.h("X-Xet-Hash") == b.xet_hash
    assert a.h("X-Linked-Etag") == '"%s"' % b.sha256 and a.h("X-Linked-Size") == str(b.size)
    assert 'rel="xet-auth"' in a.h("Link") and 'rel="xet-reconstruction-info"' in a.h("Link")
    loc = a.h("Location")
    assert "/xet-bridge-us/" in loc and "Key-Pair-Id=" in loc and "Expires=" in loc
    got = hub.get(loc, headers={"Range": "bytes=0-3"})
    assert got.status == 206 and got.body == b"GGUF" and got.h("ETag") == '"%s"' % b.xet_hash
    hub.ctl("expire", {})
    assert hub.get(loc).status == 403
    info = hub.get("/acme/tiny/resolve/main/tiny.gguf",
                   headers={"Accept": "application/vnd.xet-fileinfo+json, */*"})
    assert info.status == 200 and info.h("Content-Type") == "application/vnd.xet-fileinfo+json"
    assert info.json()["hash"] == b.xet_hash and info.h("X-Linked-Size") == str(b.size)
    token_url = re.search(r'<([^>]+)>; rel="xet-auth"', a.h("Link"))[1]
    assert set(hub.get(token_url).json()) == {"accessToken", "exp", "casUrl"}
    plain = hub.head("/acme/tiny/resolve/main/model.safetensors",
                     headers={"Accept": "application/vnd.xet-fileinfo+json"})
    assert plain.status == 302, "only Xet files answer the fileinfo Accept"


def test_cdn_signature_checks(hub):
    loc = cdn_url(hub)
    assert hub.head(loc).status == 200
    bad = re.sub(r"X-Amz-Signature=([0-9a-f])", lambda m: "X-Amz-Signature=" +
                 ("0" if m[1] != "0" else "1"), loc)
    a = hub.get(bad)
    assert a.status == 403 and b"SignatureDoesNotMatch" in a.body
    assert a.h("Content-Type") == "application/xml"
    unsigned = hub.get(loc.split("?")[0])
    assert unsigned.status == 403 and b"AccessDenied" in unsigned.body
    hub.ctl("expire", {})
    gone = hub.get(loc)
    assert gone.status == 403 and b"Request has expired" in gone.body
    fresh = cdn_url(hub)
    assert hub.head(fresh).status == 200


def test_cdn_url_ttl_expires(hub):
    hub.ctl("settings", {"url_ttl": 1})
    loc = cdn_url(hub)
    assert "X-Amz-Expires=1&" in loc
    time.sleep(2.1)
    a = hub.get(loc)
    assert a.status == 403 and b"Request has expired" in a.body


def test_cdn_ignore_range(hub):
    hub.ctl("settings", {"cdn_ignore_range": True})
    a = hub.get(cdn_url(hub, "tiny.gguf"), headers={"Range": "bytes=0-3"})
    assert a.status == 200 and a.body == MAIN.files["tiny.gguf"].data


def test_raw_serves_the_pointer(hub):
    a = hub.get("/acme/tiny/raw/main/model.safetensors")
    b = MAIN.files["model.safetensors"]
    assert a.status == 200 and a.body == b.pointer and a.h("ETag") == '"%s"' % b.oid


def test_rename_redirects(hub):
    a = hub.get("/api/models/gpt2")
    assert a.status == 307 and a.h("Location") == "/api/models/openai-community/gpt2"
    assert a.body == b"Temporary Redirect. Redirecting to /api/models/openai-community/gpt2"
    assert a.h("Content-Type").startswith("text/plain")
    assert hub.get(a.h("Location")).json()["id"] == "openai-community/gpt2"
    b = hub.head("/api/models/gpt2/tree/main?recursive=true")
    assert b.h("Location") == "/api/models/openai-community/gpt2/tree/main?recursive=true"
    c = hub.head("/gpt2/resolve/main/config.json")
    assert c.status == 307 and c.h("Location") == "/openai-community/gpt2/resolve/main/config.json"


# ---------------------------------------------------------------------------------------------
# Gating, private, disabled, tokens (hub-api.md §5, §6)

GATE_LOGIN = ("Access to model %s is restricted. You must have access to it and be authenticated "
              "to access it. Please log in." % LLAMA)
GATE_LIST = ("Access to model %s is restricted and you are not in the authorized list. Visit "
             "https://huggingface.co/%s to ask for access." % (LLAMA, LLAMA))
GATE_PENDING = ("Your request to access model %s is awaiting a review from the repo authors."
                % LLAMA)
DATA_LOGIN = ("Access to dataset acme/gated-data is restricted. You must have access to it and be "
              "authenticated to access it. Please log in.")
DATA_LIST = ("Access to dataset acme/gated-data is restricted and you are not in the authorized "
             "list. Visit https://huggingface.co/datasets/acme/gated-data to ask for access.")

ROWS = [
    # (target, token, status, X-Error-Code, X-Error-Message)
    ("/%s/resolve/main/config.json" % LLAMA, None, 401, "GatedRepo", GATE_LOGIN),
    ("/%s/resolve/main/config.json" % LLAMA, BOB, 403, "GatedRepo", GATE_LIST),
    ("/%s/resolve/main/config.json" % LLAMA, CAROL, 403, "GatedRepo", GATE_PENDING),
    ("/%s/resolve/main/config.json" % LLAMA, ALICE_FG_NOGATED, 403, None, MSG_FG),
    ("/%s/resolve/main/config.json" % LLAMA, ALICE, 307, None, None),
    ("/%s/resolve/main/model.safetensors" % LLAMA, ALICE_FG_NOREPO, 302, None, None),
    ("/%s/resolve/main/model.safetensors" % LLAMA, BOB, 403, "GatedRepo", GATE_LIST),
    ("/api/models/%s" % LLAMA, None, 200, None, None),
    ("/api/models/%s/tree/main" % LLAMA, None, 200, None, None),
    ("/api/models/%s/auth-check" % LLAMA, None, 401, "GatedRepo", GATE_LOGIN),
    ("/datasets/acme/gated-data/resolve/main/data.csv", None, 401, "GatedRepo", DATA_LOGIN),
    ("/datasets/acme/gated-data/resolve/main/data.csv", BOB, 403, "GatedRepo", DATA_LIST),
    ("/datasets/acme/gated-data/resolve/main/data.csv", DAVE, 307, None, None),
    ("/api/models/acme/private", None, 401, None, "Invalid username or password."),
    ("/api/models/acme/private", BOB, 404, "RepoNotFound", "Repository not found"),
    ("/api/models/acme/private", ALICE, 200, None, None),
    ("/api/models/acme/private", ALICE_FG_NOGATED, 200, None, None),
    ("/api/models/acme/private", ALICE_FG_NOREPO, 404, "RepoNotFound", "Repository not found"),
    ("/api/models/acme/private", DAVE, 403, None, MSG_ORG),
    ("/acme/private/resolve/main/config.json", None, 401, None, "Invalid username or password."),
    ("/acme/private/resolve/main/config.json", BOB, 404, "RepoNotFound", "Repository not found"),
    ("/acme/private/resolve/main/config.json", ALICE, 307, None, None),
    ("/api/models/acme/private/tree/main", ALICE_FG_NOREPO, 404, "RepoNotFound",
     "Repository not found"),
    ("/api/models/acme/disabled", None, 403, None, "Access to this resource is disabled."),
    ("/api/models/acme/disabled/tree/main", ALICE, 403, None,
     "Access to this resource is disabled."),
    ("/acme/disabled/resolve/main/config.json", None, 403, None,
     "Access to this resource is disabled."),
    ("/api/models/acme/nope", None, 401, None, "Invalid username or password."),
    ("/api/models/acme/nope", ALICE, 404, "RepoNotFound", "Repository not found"),
    ("/acme/nope/resolve/main/x", ALICE, 404, "RepoNotFound", "Repository not found"),
    ("/api/models/acme/tiny", "hf_not_a_real_token", 401, None,
     "Invalid credentials in Authorization header"),
    ("/acme/tiny/resolve/main/config.json", "hf_not_a_real_token", 401, None,
     "Invalid credentials in Authorization header"),
]


@pytest.mark.parametrize("target,token,status,code,message", ROWS)
def test_access_rows(hub, target, token, status, code, message):
    a = hub.get(target, token=token)
    assert a.status == status, a.body
    assert a.h("X-Error-Code") == code
    assert a.h("X-Error-Message") == message
    if status == 401:
        assert a.h("WWW-Authenticate") == 'Bearer realm="Authentication required", charset="UTF-8"'
    if message and target.startswith("/api/"):
        assert a.json() == {"error": message}
    elif message:
        assert a.body.decode() == message


def test_gate_applies_on_resolve_cache_too(hub):
    loc = hub.head("/%s/resolve/main/config.json" % LLAMA, token=ALICE).h("Location")
    assert hub.get(loc, token=ALICE).status == 200
    a = hub.get(loc, token=BOB)
    assert a.status == 403 and a.h("X-Error-Code") == "GatedRepo"
    assert hub.get(loc).status == 401


def test_control_grant_token_and_branch(hub):
    target = "/%s/resolve/main/config.json" % LLAMA
    hub.ctl("grant", {"repo": LLAMA, "user": "bob"})
    assert hub.head(target, token=BOB).status == 307
    hub.ctl("grant", {"repo": LLAMA, "user": "alice", "revoke": True})
    assert hub.head(target, token=ALICE).h("X-Error-Message") == GATE_LIST
    hub.ctl("grant", {"repo": LLAMA, "user": "bob", "pending": True})
    assert hub.head(target, token=BOB).h("X-Error-Message") == GATE_PENDING
    hub.ctl("reset", {})
    hub.ctl("token", {"token": ALICE_FG_NOGATED, "can_read_gated": True})
    assert hub.head(target, token=ALICE_FG_NOGATED).status == 307
    hub.ctl("token", {"token": ALICE, "valid": False})
    assert hub.get("/api/models/acme/tiny", token=ALICE).status == 401
    assert hub.get("/api/whoami-v2", token=ALICE).json() == {
        "error": "Invalid username or password."}
    hub.ctl("branch", {"type": "model", "repo": "acme/tiny", "branch": "main", "commit": M2.sha})
    assert hub.get("/api/models/acme/tiny").json()["sha"] == M2.sha
    hub.ctl("branch", {"repo": "acme/tiny", "branch": "main", "to_ref": "v1.0"})
    assert hub.get("/api/models/acme/tiny/revision/main").json()["sha"] == M0.sha
    assert hub.ctl("fixture")["repos"][0]["refs"]["main"] == M0.sha
    bad = hub.req("POST", "/_fake/branch", body=json.dumps(
        {"repo": "acme/tiny", "branch": "main", "commit": "0" * 40}))
    assert bad.status == 400
    hub.ctl("reset", {})
    assert hub.get("/api/models/acme/tiny").json()["sha"] == MAIN.sha


def test_whoami(hub):
    me = hub.get("/api/whoami-v2", token=ALICE).json()
    assert me["type"] == "user" and me["name"] == "alice"
    assert [o["name"] for o in me["orgs"]] == ["acme"]
    assert me["auth"]["type"] == "access_token"
    assert me["auth"]["accessToken"]["role"] == "read"
    assert "fineGrained" not in me["auth"]["accessToken"]
    fg = hub.get("/api/whoami-v2", token=ALICE_FG_NOGATED).json()["auth"]["accessToken"]
    assert fg["role"] == "fineGrained"
    assert fg["fineGrained"]["canReadGatedRepos"] is False
    scoped = {s["entity"]["name"]: s for s in fg["fineGrained"]["scoped"]}
    assert set(scoped) == {"alice", "acme"} and scoped["acme"]["entity"]["type"] == "org"
    assert "repo.content.read" in scoped["acme"]["permissions"]
    assert isinstance(fg["fineGrained"]["global"], list)
    norepo = hub.get("/api/whoami-v2", token=ALICE_FG_NOREPO).json()["auth"]["accessToken"]
    assert norepo["fineGrained"]["canReadGatedRepos"] is True
    assert norepo["fineGrained"]["scoped"] == []
    a = hub.get("/api/whoami-v2")
    assert a.status == 401 and a.h("WWW-Authenticate")
    b = hub.get("/api/whoami-v2", token="hf_nope")
    assert b.status == 401
    assert b.h("X-Error-Message") == "Invalid credentials in Authorization header"


def test_namespace_listing(hub):
    pages = follow_pages(hub, "/api/models?author=acme&limit=1")
    assert all(len(p) == 1 for p in pages)
    ids = [m["id"] for p in pages for m in p]
    assert ids == ["acme/disabled", "acme/tiny"]
    assert all(set(m) >= {"_id", "id", "private"} for p in pages for m in p)
    mine = [m["id"] for p in follow_pages(hub, "/api/models?author=acme", token=ALICE) for m in p]
    assert mine == ["acme/disabled", "acme/private", "acme/tiny"]
    data = [m["id"] for p in follow_pages(hub, "/api/datasets?author=acme") for m in p]
    assert data == ["acme/data", "acme/gated-data"]
    spaces = hub.get("/api/spaces?author=acme").json()
    assert [s["id"] for s in spaces] == ["acme/demo"]
    assert hub.get("/api/models?author=meta-llama&expand=gated").json()[0]["gated"] == "manual"


# ---------------------------------------------------------------------------------------------
# Rate limits and the request log


def test_ratelimit_headers_count_down(hub):
    r1 = hub.get("/api/models/acme/tiny").h("RateLimit")
    r2 = hub.get("/api/models/acme/tiny").h("RateLimit")
    m1, m2 = (re.fullmatch(r'"api";r=(\d+);t=(\d+)', r) for r in (r1, r2))
    assert m1 and m2 and int(m2[1]) == int(m1[1]) - 1
    alice = hub.get("/api/models/acme/tiny", token=ALICE)
    assert "q=1000;w=300" in alice.h("RateLimit-Policy")
    res = hub.head("/acme/tiny/resolve/main/config.json")
    assert res.h("RateLimit-Policy") == '"fixed window";"resolvers";q=3000;w=300'


def test_ratelimit_fault_and_enforced_quota(hub):
    hub.ctl("fault", {"match": "/resolve/", "action": "ratelimit", "t": 7, "retry_after": 3})
    a = hub.head("/acme/tiny/resolve/main/config.json")
    assert a.status == 429 and a.h("RateLimit") == '"resolvers";r=0;t=7'
    assert a.h("Retry-After") == "3"
    assert hub.head("/acme/tiny/resolve/main/config.json").status == 307
    hub.ctl("settings", {"rate_limit": {"api": 2}})
    statuses = [hub.get("/api/models/acme/tiny").status for _ in range(3)]
    assert statuses == [200, 200, 429]
    last = hub.get("/api/models/acme/tiny")
    assert last.h("RateLimit").startswith('"api";r=0;') and "q=2;" in last.h("RateLimit-Policy")


def test_request_log_has_one_row_per_request(hub):
    hub.head("/acme/tiny/resolve/main/config.json", token=ALICE)
    loc = cdn_url(hub)
    hub.get(loc, headers={"Range": "bytes=0-9"})
    hub.ctl("fixture")
    rows = hub.ctl("requests")
    assert [(r["origin"], r["method"], r["status"]) for r in rows] == [
        ("api", "HEAD", 307), ("api", "HEAD", 302), ("cdn", "GET", 206)]
    assert rows[0]["auth"] is True and rows[0]["token"] == ALICE
    assert rows[0]["path"] == "/acme/tiny/resolve/main/config.json" and rows[0]["query"] == ""
    assert rows[2]["auth"] is False and rows[2]["token"] is None
    assert rows[2]["range"] == "bytes=0-9" and "X-Amz-Signature=" in rows[2]["query"]
    assert all(isinstance(r["t"], float) for r in rows)
    hub.get(loc, token=BOB)  # the CDN serves a token it did not need, and the log says so
    assert hub.ctl("requests")[-1]["auth"] is True


# ---------------------------------------------------------------------------------------------
# Faults


def test_fault_status_with_headers_and_count(hub):
    hub.ctl("fault", {"match": "tree/main", "origin": "api", "count": 2, "action": "status",
                      "status": 503, "headers": {"Retry-After": "1"}})
    for _ in range(2):
        a = hub.get("/api/models/acme/tiny/tree/main")
        assert a.status == 503 and a.h("Retry-After") == "1"
    assert hub.get("/api/models/acme/tiny/tree/main").status == 200
    hub.ctl("fault", {"match": "/repos/", "origin": "cdn", "action": "status", "status": 500})
    assert hub.get("/api/models/acme/tiny").status == 200, "origin filter"
    assert hub.get(cdn_url(hub)).status == 500
    bad = hub.req("POST", "/_fake/fault", body=json.dumps({"action": "explode"}))
    assert bad.status == 400


def test_fault_truncate_declares_length_sends_less_and_closes(hub):
    loc = cdn_url(hub, "tiny.gguf")
    size = MAIN.files["tiny.gguf"].size
    hub.ctl("fault", {"match": "tiny.gguf", "origin": "cdn", "action": "truncate", "bytes": 10})
    u = urlsplit(loc)
    s = hub.raw("cdn", b"GET %s?%s HTTP/1.1\r\nHost: x\r\n\r\n" % (u.path.encode(),
                                                                  u.query.encode()))
    try:
        status, headers, body = read_head(s)
        assert status == 200 and headers["content-length"] == str(size)
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            body += chunk
        assert body == MAIN.files["tiny.gguf"].data[:10]
    finally:
        s.close()


def test_fault_reset_sends_rst(hub):
    hub.ctl("fault", {"match": "resolve-cache", "action": "reset"})
    loc = hub.head("/acme/tiny/resolve/main/tokenizer.json").h("Location")
    s = hub.raw("api", b"GET %s HTTP/1.1\r\nHost: x\r\n\r\n" % loc.encode())
    try:
        with pytest.raises(ConnectionResetError):
            status, headers, body = read_head(s)
            assert status == 200
            for _ in range(100):
                if not s.recv(65536):
                    break
    finally:
        s.close()


def test_fault_stall_then_completes(hub):
    loc = hub.head("/acme/tiny/resolve/main/config.json").h("Location")
    hub.ctl("fault", {"match": "resolve-cache", "action": "stall", "seconds": 1.5})
    c = hub.conn(timeout=0.5)
    try:
        with pytest.raises(socket.timeout):
            c.request("GET", loc)
            c.getresponse().read()
    finally:
        c.close()
    hub.ctl("fault", {"match": "resolve-cache", "action": "stall", "seconds": 0.5, "bytes": 3})
    t0 = time.monotonic()
    a = hub.get(loc)
    assert a.body == MAIN.files["config.json"].data and time.monotonic() - t0 >= 0.45


def test_fault_bad_json_wrong_range_redirect_loop_wrong_size(hub):
    hub.ctl("fault", {"match": "/api/models/acme/tiny", "action": "bad_json"})
    a = hub.get("/api/models/acme/tiny")
    assert a.status == 200
    with pytest.raises(ValueError):
        json.loads(a.body)
    loc = cdn_url(hub)
    hub.ctl("fault", {"match": "/repos/", "action": "wrong_range"})
    b = hub.get(loc, headers={"Range": "bytes=10-19"})
    assert b.status == 206 and b.h("Content-Range").startswith("bytes 11-20/")
    assert b.body == MAIN.files["model.safetensors"].data[10:20]
    hub.ctl("fault", {"match": "resolve/main/README.md", "action": "redirect_loop"})
    c = hub.head("/acme/tiny/resolve/main/README.md")
    assert c.status == 302 and c.h("Location") == "/acme/tiny/resolve/main/README.md"
    hub.ctl("fault", {"match": "/repos/", "action": "wrong_size"})
    size = MAIN.files["model.safetensors"].size
    d = hub.get(loc)
    assert d.status == 200 and len(d.body) == size - 1 and d.h("Content-Length") == str(size - 1)


def test_fault_hostile_tree_entries(hub):
    hub.ctl("fault", {"match": "tree/main/nested", "action": "hostile"})
    a = hub.get("/api/models/acme/tiny/tree/main/nested")
    entries = a.json()
    paths = [e.get("path") for e in entries]
    for p in ("nested/..", "nested/.", "nested/", "nested/a//b.txt", "nested/nul\0name.txt",
              "nested/" + "x" * 300, "elsewhere/outside.txt", "nested/sub/deeper.txt", 12345):
        assert p in paths, p
    assert paths.count("nested/a") == 2, "duplicate"
    assert any(e["type"] == "symlink" for e in entries)
    assert {e["size"] for e in entries} >= {-1, 2 ** 64 + 1}
    assert all(isinstance(e, dict) for e in hub.get(
        "/api/models/acme/tiny/tree/main/nested").json()), "one request only"


def test_fault_huge_dir(hub):
    hub.ctl("fault", {"match": "tree/main/nested", "action": "huge_dir", "entries": 2500})
    pages = follow_pages(hub, "/api/models/acme/tiny/tree/main/nested")
    assert [len(p) for p in pages] == [1000, 1000, 500]
    paths = [e["path"] for p in pages for e in p]
    assert len(set(paths)) == 2500 and paths[0] == "nested/f0000000.txt"
    assert len(hub.get("/api/models/acme/tiny/tree/main/nested").json()) == 1


def test_fault_many_repos(hub):
    hub.ctl("fault", {"match": "author=acme", "action": "many_repos", "entries": 2500})
    pages = follow_pages(hub, "/api/models?author=acme&limit=1000")
    assert [len(p) for p in pages] == [1000, 1000, 500]
    ids = [r["id"] for p in pages for r in p]
    assert len(set(ids)) == 2500 and ids[0] == "acme/r0000000"
    assert ids[-1] == "acme/r0002499"
    assert {r["id"] for r in hub.get("/api/models?author=acme").json()} >= {"acme/tiny"}


def test_delay_setting(hub):
    hub.ctl("settings", {"delay": 0.4})
    t0 = time.monotonic()
    hub.get("/api/models/acme/tiny")
    assert time.monotonic() - t0 >= 0.35
    t0 = time.monotonic()
    hub.ctl("requests")
    assert time.monotonic() - t0 < 0.35, "control requests are never delayed"


# ---------------------------------------------------------------------------------------------
# Hostile input never crashes the fake


def test_hostile_requests_leave_the_fake_serving(hub):
    junk = [
        b"GARBAGE\r\n\r\n",
        b"GET / HTTP/9.9\r\n\r\n",
        b"GET /" + b"a" * 70000 + b" HTTP/1.1\r\n\r\n",
        b"GET / HTTP/1.1\r\nX: " + b"y" * 70000 + b"\r\n\r\n",
        b"POST /_fake/fault HTTP/1.1\r\nContent-Length: 5\r\n\r\n{{{{{",
        b"POST /_fake/fault HTTP/1.1\r\nContent-Length: -1\r\n\r\n",
        b"POST /api/models/acme/tiny/paths-info/main HTTP/1.1\r\nContent-Length: 99999999\r\n\r\n",
        b"GET /api/models/acme/tiny/tree/main/%ff%fe%00 HTTP/1.1\r\n\r\n",
        b"GET /acme/tiny/resolve/main/../../../etc/passwd HTTP/1.1\r\n\r\n",
        b"GET /api/models/%00/%00/tree/%00 HTTP/1.1\r\n\r\n",
        b"GET /api/models/acme/tiny/tree/main?cursor=ZXlKdUlqb3RNWDA9Oi0x HTTP/1.1\r\n\r\n",
        b"GET /api/models/acme/tiny/tree/main?limit=-5&recursive=maybe HTTP/1.1\r\n\r\n",
        b"GET /acme/tiny/resolve/main/config.json HTTP/1.1\r\nAuthorization: Basic x\r\n\r\n",
        b"GET /acme/tiny/resolve/main/config.json HTTP/1.1\r\nAuthorization: Bearer\r\n\r\n",
    ]
    for data in junk:
        for origin in ("api", "cdn"):
            s = hub.raw(origin, data)
            try:
                s.settimeout(TIMEOUT)
                first = s.recv(65536)
                assert first.startswith(b"HTTP/1."), (data[:40], first[:80])
                status = int(first.split()[1])
                assert status != 500, (origin, data[:60], first[:200])
            finally:
                s.close()
    cdn_rng = hub.get(cdn_url(hub), headers={"Range": "bytes=5-2"})
    assert cdn_rng.status == 200, "an invalid range is ignored"
    assert hub.get("/api/models/acme/tiny").status == 200
    assert "Traceback" not in hub.read_stderr()


def test_shutdown_ends_stalls(tmp_path):
    h = Hub(str(tmp_path))
    try:
        h.ctl("fault", {"match": "acme/tiny", "action": "stall", "seconds": 60})
        s = h.raw("api", b"GET /api/models/acme/tiny HTTP/1.1\r\n\r\n")
        read_head(s)
        t0 = time.monotonic()
        h.proc.terminate()
        h.proc.wait(TIMEOUT)
        assert time.monotonic() - t0 < 5 and h.proc.returncode == 0
        s.close()
    finally:
        h.stop()


def test_blob_dir_and_cdn_base(tmp_path):
    out = tmp_path / "blobs"
    pf = tmp_path / "ports.json"
    proc = subprocess.Popen([PYTHON, os.path.join(HERE, "fakehub.py"), "--port-file", str(pf),
                             "--quiet", "--blob-dir", str(out), "--cdn-base",
                             "http://127.0.0.3:9/lfs"], stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + TIMEOUT
        while not pf.exists():
            assert proc.poll() is None and time.monotonic() < deadline
            time.sleep(0.02)
        st = MAIN.files["model.safetensors"]
        assert (out / st.sha256).read_bytes() == st.data
        api = urlsplit(json.loads(pf.read_text())["api"])
        c = http.client.HTTPConnection(api.hostname, api.port, timeout=TIMEOUT)
        c.request("HEAD", "/acme/tiny/resolve/main/model.safetensors")
        loc = c.getresponse().getheader("Location")
        c.close()
        assert loc.startswith("http://127.0.0.3:9/lfs/%s?" % st.sha256)
        assert "X-Amz-Signature=" in loc
    finally:
        proc.terminate()
        proc.wait(TIMEOUT)


# ---------------------------------------------------------------------------------------------
# Published repos (--repo SPEC): a directory's files served like a fixture repo

MIB10 = 10 * 1024 * 1024
PUB_FILES = {  # path -> (bytes, stored in LFS?)
    "hello.txt": (b"hello from a published directory\n", False),
    "nested/deep/info.json": (b'{"published": true}\n', False),
    "weights.bin": (fixture_mod.rand_bytes("pub weights", 3000), True),  # LFS by pattern
    "big.dat": (fixture_mod.rand_bytes("pub big", MIB10), True),  # LFS by size
    "under.dat": (fixture_mod.rand_bytes("pub under", MIB10 - 1), False),  # just under
}


def git_oid(data):
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


def write_tree(top, files):
    for rel, data in files.items():
        p = os.path.join(top, *rel.split("/"))
        os.makedirs(os.path.dirname(p), exist_ok=True)
        with open(p, "wb") as f:
            f.write(data)


def run_fakehub(tmp, *args):
    return subprocess.run([PYTHON, os.path.join(HERE, "fakehub.py"), "--port-file",
                           os.path.join(str(tmp), "p.json"), "--quiet"] + list(args),
                          capture_output=True, text=True, timeout=TIMEOUT)


@pytest.fixture(scope="module")
def pub(tmp_path_factory):
    top = str(tmp_path_factory.mktemp("pubdir"))
    write_tree(top, {p: d for p, (d, _) in PUB_FILES.items()})
    h = Hub(str(tmp_path_factory.mktemp("pubhub")),
            ["--repo", "acme/pub=" + top, "--repo", "datasets/acme/pubdata=" + top,
             "--repo", "spaces/acme/pubspace=" + top])
    h.top = top
    try:
        yield h
    finally:
        h.stop()


def test_published_tree_lists_files_with_git_oids_and_lfs(pub):
    for api in ("models/acme/pub", "datasets/acme/pubdata", "spaces/acme/pubspace"):
        pages = follow_pages(pub, "/api/%s/tree/main?recursive=true" % api)
        entries = {e["path"]: e for p in pages for e in p}
        assert set(entries) == set(PUB_FILES) | {".gitattributes", "nested", "nested/deep"}
        assert entries["nested"]["type"] == "directory"
        for path, (data, lfs) in PUB_FILES.items():
            e = entries[path]
            assert e["type"] == "file" and e["size"] == len(data), path
            if lfs:
                sha = hashlib.sha256(data).hexdigest()
                pointer = ("version https://git-lfs.github.com/spec/v1\noid sha256:%s\n"
                           "size %d\n" % (sha, len(data))).encode()
                assert e["lfs"] == {"oid": sha, "size": len(data),
                                    "pointerSize": len(pointer)}, path
                assert e["oid"] == git_oid(pointer), path
            else:
                assert "lfs" not in e and e["oid"] == git_oid(data), path
    root = [e["path"] for e in pub.get("/api/models/acme/pub/tree/main").json()]
    assert root == ["nested", ".gitattributes", "big.dat", "hello.txt", "under.dat",
                    "weights.bin"], "directories first, then files by name"
    attrs = pub.get(pub.head("/acme/pub/resolve/main/.gitattributes").h("Location")).body
    for pat in ("*.safetensors", "*.gguf", "*.bin", "*.parquet", "*.zst"):
        assert (pat + " filter=lfs diff=lfs merge=lfs -text\n").encode() in attrs


def test_published_info_paths_info_and_dates(pub):
    info = pub.get("/api/models/acme/pub").json()
    assert info["id"] == "acme/pub" and info["private"] is False and info["gated"] is False
    assert sorted(s["rfilename"] for s in info["siblings"]) == sorted(
        list(PUB_FILES) + [".gitattributes"])
    sha = info["sha"]
    assert re.fullmatch(r"[0-9a-f]{40}", sha)
    a = pub.req("POST", "/api/models/acme/pub/paths-info/main",
                body=json.dumps({"paths": ["hello.txt", "nested/deep", "nope"], "expand": True}),
                headers={"Content-Type": "application/json"})
    got = {e["path"]: e for e in a.json()}
    assert set(got) == {"hello.txt", "nested/deep"}
    assert got["hello.txt"]["oid"] == git_oid(PUB_FILES["hello.txt"][0])
    assert got["nested/deep"]["type"] == "directory"
    assert got["hello.txt"]["lastCommit"] == {"id": sha, "title": "Upload folder",
                                              "date": info["lastModified"]}
    out = pub.ctl("fixture")
    (repo,) = [r for r in out["repos"] if r["id"] == "acme/pub"]
    assert repo["refs"] == {"main": sha}
    assert set(repo["commits"][sha]["files"]) == set(PUB_FILES) | {".gitattributes"}


def test_published_resolve_redirects_and_ranges(pub):
    small = pub.head("/acme/pub/resolve/main/nested/deep/info.json")
    assert small.status == 307 and small.h("Location").startswith("/api/resolve-cache/models/")
    assert pub.get(small.h("Location")).body == PUB_FILES["nested/deep/info.json"][0]
    under = pub.head("/datasets/acme/pubdata/resolve/main/under.dat")
    assert under.status == 307, "a regular file is served by the Hub, not the CDN"
    data = PUB_FILES["big.dat"][0]
    a = pub.head("/datasets/acme/pubdata/resolve/main/big.dat")
    assert a.status == 302 and a.h("X-Linked-Size") == str(len(data))
    assert a.h("X-Linked-Etag") == '"%s"' % hashlib.sha256(data).hexdigest()
    loc = a.h("Location")
    assert loc.startswith(pub.urls["cdn"] + "/") and "X-Amz-Signature=" in loc
    part = pub.get(loc, headers={"Range": "bytes=%d-%d" % (MIB10 - 5000, MIB10 - 1)})
    assert part.status == 206 and part.body == data[-5000:]
    assert part.h("Content-Range") == "bytes %d-%d/%d" % (MIB10 - 5000, MIB10 - 1, MIB10)
    w = pub.head("/spaces/acme/pubspace/resolve/main/weights.bin")
    assert w.status == 302
    assert pub.get(w.h("Location")).body == PUB_FILES["weights.bin"][0]


def test_published_commit_sha_derives_from_names_and_bytes(pub, tmp_path):
    served = pub.get("/api/models/acme/pub").json()["sha"]

    def sha(top, id="acme/pub"):
        fx = fixture_mod.build([("model", id, top)])
        return fx.repo("model", id).refs["main"]

    assert sha(pub.top) == served, "the served sha is the one build() derives"
    other = str(tmp_path / "other")
    write_tree(other, {"hello.txt": b"hello from a published directory\n"})
    first = sha(other)
    assert sha(other) == first
    write_tree(other, {"hello.txt": b"hello from a published directory!"})
    assert sha(other) != first, "changed bytes change the commit"
    assert sha(other, "acme/pub2") != sha(other), "the repo id is part of the commit"
    os.rename(os.path.join(other, "hello.txt"), os.path.join(other, "hi.txt"))
    assert sha(other) != first


def test_published_gitattributes_of_dir_is_kept(tmp_path):
    write_tree(str(tmp_path), {".gitattributes": b"*.dat filter=lfs diff=lfs merge=lfs -text\n",
                               "x.dat": b"tiny but LFS by the name pattern\n"})
    fx = fixture_mod.build([("model", "acme/attrs", str(tmp_path))])
    files = fx.repo("model", "acme/attrs").commits[
        fx.repo("model", "acme/attrs").refs["main"]].files
    assert files[".gitattributes"].data == b"*.dat filter=lfs diff=lfs merge=lfs -text\n"
    assert not files["x.dat"].lfs, "classification follows the Hub's usual patterns only"


@pytest.mark.parametrize("spec,why", [
    ("acme/x", "want [datasets/|spaces/]NS/NAME=DIR"),
    ("noslash=DIR", "is not a repo id"),
    ("models/acme/x=DIR", "is not a repo id"),
    ("acme/../x=DIR", "is not a repo id"),
    ("acme/x=DIR/missing", "is not a directory"),
    ("acme/tiny=DIR", "has that repo already"),
])
def test_published_bad_spec_exits_2(tmp_path, spec, why):
    r = run_fakehub(tmp_path, "--repo", spec.replace("DIR", str(tmp_path)))
    assert r.returncode == 2, r
    assert r.stderr.startswith("fakehub: --repo ") and why in r.stderr, r.stderr
    assert r.stderr.count("\n") == 1, "one clear line, no traceback: " + r.stderr
    assert not os.path.exists(tmp_path / "p.json")


@pytest.mark.parametrize("name,why", [
    ("link.txt", "is a symbolic link"),
    ("linkdir", "is a symbolic link"),
    (".git/config", "refuses the name"),
    (b"bad\xff.txt", "refuses the name"),
])
def test_published_refused_files_exit_2(tmp_path, name, why):
    top = tmp_path / "d"
    write_tree(str(top), {"ok.txt": b"ok\n"})
    if name == "link.txt":
        os.symlink("ok.txt", str(top / name))
    elif name == "linkdir":
        os.symlink(".", str(top / name))
    elif isinstance(name, bytes):
        with open(os.path.join(os.fsencode(str(top)), name), "wb") as f:
            f.write(b"x")
    else:
        write_tree(str(top), {name: b"x"})
    r = run_fakehub(tmp_path, "--repo", "acme/x=%s" % top)
    assert r.returncode == 2 and why in r.stderr and r.stderr.count("\n") == 1, r
