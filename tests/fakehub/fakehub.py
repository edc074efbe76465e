#!/usr/bin/python3
"""fakehub.py - a faithful local Hugging Face Hub for hfmount's tests.

Two HTTP/1.1 servers (keep-alive, Content-Length on every answer): the API origin
(default 127.0.0.1) answers the Hub's routes and the control API under /_fake/; the CDN origin
(default 127.0.0.2) serves LFS blobs behind signed, expiring URLs, like the real CDN hosts.
The content comes from fixture.py. The port file, CLI, tokens and control API are in README.md.

Faithfulness rules (the authority is shared/hub-api.md; sections cited as §N):
  1. Answer like the real Hub, not like hfmount expects. Where hub-api.md marks a behaviour
     unverified [U], pick the strictest plausible variant, so hfmount cannot lean on a
     convenience the real Hub may not offer (e.g. the resolve -> resolve-cache 307 carries no
     X-Repo-Commit or ETag: a client must follow it).
  2. Never special-case a client. Everything is keyed on method, path, query and the
     Authorization header; the user agent is only recorded.
  3. Errors carry the exact status, X-Error-Code and X-Error-Message of hub-api.md §5, a JSON
     {"error": ...} body under /api/ and a text body elsewhere; 401s carry WWW-Authenticate.
  4. Revisions travel as one percent-encoded path segment (refs%2Fpr%2F1); tree paths accept
     both "/" and "%2F"; pagination uses an absolute Link header with an opaque cursor.
  5. The CDN never needs a token, signs its URLs (HMAC over path and expiry), expires them, and
     records whether a token came anyway (hfmount must never send one there).
  6. Hostile input never crashes the fake: every request runs inside a catch-all that answers
     500 and keeps serving; bodies and headers are capped.

Layout: constants and messages; state; access rules (§5/§6); route handlers; CDN signing;
control API; ROUTES (the one route table); FAULTS (every injected fault, in one place); the
HTTP plumbing (Handler.write_response is the only writer of answers); main().
Standard library only; run it with /usr/bin/python3.
"""

import argparse
import base64
import binascii
import calendar
import hashlib
import hmac
import json
import mimetypes
import os
import re
import secrets
import signal
import socket
import struct
import sys
import threading
import time
import traceback
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, quote, unquote, urlencode, urlsplit

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import fixture  # noqa: E402

# ---------------------------------------------------------------------------------------------
# Constants and messages (hub-api.md §5, §6)

DEFAULT_SETTINGS = {
    "url_ttl": 3600,  # signed CDN URL lifetime, seconds (X-Amz-Expires)
    "page_size": 1000,  # tree page size; expand=true pages are min(this, 50)
    "delay": 0.0,  # seconds slept before every non-control answer
    "cdn_ignore_range": False,  # CDN answers 200 + whole body to a Range request
    "rate_limit": None,  # {"api"|"resolvers"|"pages": quota}: enforce these quotas with 429
}
EXPAND_PAGE_SIZE = 50
LIST_PAGE_SIZE = 1000
MAX_SYNTHETIC = 10 ** 7  # huge_dir entries
RATE_WINDOW = 300
QUOTAS = {  # per 5-minute window, hub-api.md §5
    False: {"api": 500, "resolvers": 3000, "pages": 100},  # anonymous
    True: {"api": 1000, "resolvers": 5000, "pages": 200},  # free user
}
MAX_BODY = 1 << 20  # request body cap (paths-info, control API)
SOCKET_TIMEOUT = 120

MSG_BAD_LOGIN = "Invalid username or password."
MSG_BAD_TOKEN = "Invalid credentials in Authorization header"
MSG_REPO_NOT_FOUND = "Repository not found"
MSG_ENTRY_NOT_FOUND = "Entry not found"
MSG_DISABLED = "Access to this resource is disabled."
MSG_FINE_GRAINED_GATED = ("Please enable access to public gated repositories in your "
                          "fine-grained token settings to view this repository.")
MSG_ORG_POLICY = ("Due to the organization token policy, your token needs to be approved by the "
                  "organization before you can access this resource.")
MSG_NOT_FOUND_PAGE = "Sorry, we can't find the page you are looking for."
# [U] the real 429 text is unverified; clients must key on the status and RateLimit header.
MSG_RATE_LIMITED = ("You have exceeded our rate limit for '%s' requests. "
                    "Retry after the current window resets.")
WWW_AUTHENTICATE = 'Bearer realm="Authentication required", charset="UTF-8"'
EXPOSE_HEADERS = ("X-Repo-Commit,X-Request-Id,X-Error-Code,X-Error-Message,X-Total-Count,ETag,"
                  "Link,Accept-Ranges,Content-Range,X-Linked-Size,X-Linked-ETag,X-Xet-Hash")
CDN_LAST_MODIFIED = "Mon, 01 Jan 2024 00:00:00 GMT"
XET_FILEINFO = "application/vnd.xet-fileinfo+json"
CLOUDFRONT_KEY_PAIR = "K3FAKEHUBKEYPAIR"

TYPES = {"models": "model", "datasets": "dataset", "spaces": "space"}
RESOLVE_PREFIX = {"model": "", "dataset": "datasets/", "space": "spaces/"}


def gate_msg_login(repo):
    return ("Access to %s %s is restricted. You must have access to it and be authenticated to "
            "access it. Please log in." % (repo.type, repo.id))


def gate_msg_not_authorized(repo):
    return ("Access to %s %s is restricted and you are not in the authorized list. "
            "Visit https://huggingface.co/%s%s to ask for access."
            % (repo.type, repo.id, RESOLVE_PREFIX[repo.type], repo.id))


def gate_msg_pending(repo):
    return ("Your request to access %s %s is awaiting a review from the repo authors."
            % (repo.type, repo.id))


class HubError(Exception):
    """An error answer: status, X-Error-Message, optional X-Error-Code and extra headers."""

    def __init__(self, status, message, code=None, headers=()):
        super().__init__(message)
        self.status = status
        self.message = message
        self.code = code
        self.headers = list(headers)


class Response:
    def __init__(self, status, headers=(), body=b"", content_type=None):
        self.status = status
        self.headers = list(headers)
        self.body = body
        if content_type:
            self.headers.append(("Content-Type", content_type))

    def header(self, name):
        for k, v in self.headers:
            if k.lower() == name.lower():
                return v
        return None

    def set_header(self, name, value):
        self.headers = [(k, v) for k, v in self.headers if k.lower() != name.lower()]
        self.headers.append((name, value))


def json_response(obj, status=200, headers=()):
    body = json.dumps(obj, separators=(",", ":")).encode()
    ctype = None if any(k.lower() == "content-type" for k, _ in headers) else \
        "application/json; charset=utf-8"
    return Response(status, headers, body, ctype)


def text_response(status, text, headers=()):
    return Response(status, headers, text.encode(), "text/plain; charset=utf-8")


def qbool(value):
    return str(value).lower() in ("1", "true", "yes")


# ---------------------------------------------------------------------------------------------
# State


class Request:
    """What a handler sees of one HTTP request."""

    def __init__(self, origin, method, raw_path, query, headers, body, client):
        self.origin = origin
        self.method = method
        self.raw_path = raw_path
        self.query = query
        self.params = parse_qs(query, keep_blank_values=True)
        self.headers = headers
        self.body = body
        self.client = client
        self.tok = None  # fixture token dict of a valid token, else None
        self.fault = None  # the fault taken for this request, if any
        self.match = None  # route regex match

    def param(self, name, default=None):
        values = self.params.get(name)
        return values[0] if values else default

    @property
    def is_api_path(self):
        return self.raw_path.startswith("/api/")


class State:
    """Everything mutable; one lock guards it (handlers run on many threads)."""

    def __init__(self, fx, api_url, cdn_url, cdn_base=None, quiet=True):
        self.fx = fx
        self.api_url = api_url
        self.cdn_url = cdn_url
        self.cdn_base = cdn_base
        self.quiet = quiet
        self.lock = threading.Lock()
        self.shutting_down = threading.Event()
        self.secret = secrets.token_bytes(32)  # CDN signing key, per process
        self.generation = 0  # bumped by /_fake/expire; part of every signature
        self.reset()

    def reset(self):
        with self.lock:
            self.log = []
            self.faults = []
            self.settings = dict(DEFAULT_SETTINGS)
            self.refs = {(r.type, r.id): dict(r.refs) for r in self.fx.repos}
            self.grants = {(r.type, r.id): set(r.grants) for r in self.fx.repos}
            self.pending = {(r.type, r.id): set(r.pending) for r in self.fx.repos}
            self.tokens = {t: dict(v) for t, v in self.fx.tokens.items()}
            self.counters = {}

    def record(self, row):
        with self.lock:
            self.log.append(row)

    def setting(self, name):
        with self.lock:
            return self.settings[name]

    def rate(self, bucket, identity, authed):
        """Count one request; returns (remaining, seconds to reset, quota, enforced)."""
        now = time.time()
        window = int(now // RATE_WINDOW)
        with self.lock:
            enforce = self.settings["rate_limit"] or {}
            quota = int(enforce.get(bucket, QUOTAS[authed][bucket]))
            key = (bucket, identity, window)
            used = self.counters.get(key, 0) + 1
            self.counters[key] = used
        reset = max(1, int((window + 1) * RATE_WINDOW - now))
        return max(0, quota - used), reset, quota, bucket in enforce and used > quota


# ---------------------------------------------------------------------------------------------
# Access rules (hub-api.md §5 table, §6 tokens)


def authenticate(st, req):
    """Sets req.tok; an Authorization header naming no valid token is a 401 anywhere."""
    auth = req.headers.get("Authorization")
    if auth is None:
        return
    scheme, _, token = auth.strip().partition(" ")
    tok = st.tokens.get(token.strip()) if scheme.lower() == "bearer" else None
    if tok is None or not tok["valid"]:
        if tok is not None and req.raw_path == "/api/whoami-v2":
            raise HubError(401, MSG_BAD_LOGIN)  # a revoked token, as whoami-v2 says it [O]
        raise HubError(401, MSG_BAD_TOKEN)
    req.tok = tok


def is_member(st, user, namespace):
    return user == namespace or namespace in st.fx.users.get(user, {}).get("orgs", [])


def has_scope(tok, namespace, perm):
    if tok["role"] != "fineGrained":
        return True
    if perm in tok.get("global", []):
        return True
    return any(name == namespace and perm in perms for _, name, perms in tok.get("scoped", []))


def check_access(st, req, repo, content):
    """Raises the §5 error for this caller on this repo; `content` = file bytes (gated)."""
    tok = req.tok
    user = tok["user"] if tok else None
    if repo.private:
        if tok is None:
            raise HubError(401, MSG_BAD_LOGIN)
        if not is_member(st, user, repo.namespace):
            raise HubError(404, MSG_REPO_NOT_FOUND, "RepoNotFound")
        if repo.namespace in tok["org_blocked"]:
            raise HubError(403, MSG_ORG_POLICY)
        if not has_scope(tok, repo.namespace, "repo.content.read"):
            raise HubError(404, MSG_REPO_NOT_FOUND, "RepoNotFound")
    if repo.disabled:
        raise HubError(403, MSG_DISABLED)
    if content and repo.gated and not (user and is_member(st, user, repo.namespace)):
        key = (repo.type, repo.id)
        if tok is None:
            raise HubError(401, gate_msg_login(repo), "GatedRepo")
        with st.lock:
            pending = user in st.pending[key]
            granted = user in st.grants[key]
        if pending and not granted:
            raise HubError(403, gate_msg_pending(repo), "GatedRepo")
        if not granted:
            raise HubError(403, gate_msg_not_authorized(repo), "GatedRepo")
        if tok["role"] == "fineGrained" and not tok.get("can_read_gated"):
            raise HubError(403, MSG_FINE_GRAINED_GATED)


def find_repo(st, req, type, ns, name, content):
    """The repo named by raw path segments, after every access check."""
    rid = unquote(ns) + "/" + unquote(name)
    repo = st.fx.repo(type, rid)
    if repo is None:
        if req.tok is None:
            raise HubError(401, MSG_BAD_LOGIN)
        raise HubError(404, MSG_REPO_NOT_FOUND, "RepoNotFound")
    check_access(st, req, repo, content)
    return repo


def resolve_rev(st, repo, rev):
    """A revision (branch, tag, refs/pr/N, full sha, HEAD) -> Commit, else RevisionNotFound."""
    with st.lock:
        refs = st.refs[(repo.type, repo.id)]
        if rev == "HEAD":
            rev = repo.default_branch
        sha = refs.get(rev)
    if sha is None and re.fullmatch(r"[0-9a-f]{40}", rev or ""):
        sha = rev
    commit = repo.commits.get(sha) if sha else None
    if commit is None:
        raise HubError(404, "Invalid rev id: %s" % rev, "RevisionNotFound")
    return commit


def route_repo(st, req, content=False):
    """(repo, commit) for a route with t/ns/name[/rev] groups; no rev = default branch."""
    g = req.match.groupdict()
    type = TYPES.get(g.get("t") or "models")
    repo = find_repo(st, req, type, g["ns"], g["name"], content)
    rev = unquote(g["rev"]) if g.get("rev") is not None else repo.default_branch
    return repo, resolve_rev(st, repo, rev)


# ---------------------------------------------------------------------------------------------
# Entries (tree, paths-info)


def entry(repo, commit, path, expand):
    if path in commit.files:
        b = commit.files[path]
        e = {"type": "file", "oid": b.oid, "size": b.size, "path": path}
        if b.lfs:
            e["lfs"] = {"oid": b.sha256, "size": b.size, "pointerSize": len(b.pointer)}
        if b.xet_hash:
            e["xetHash"] = b.xet_hash
    else:
        e = {"type": "directory", "oid": commit.dirs[path], "size": 0, "path": path}
    if expand:
        last = commit.last_commit(path)
        e["lastCommit"] = {"id": last.sha, "title": last.title, "date": last.date}
    return e


def make_cursor(state):
    inner = base64.b64encode(json.dumps(state, separators=(",", ":")).encode()).decode()
    return base64.b64encode((inner + ":" + str(state.get("n", 0))).encode()).decode()


def read_cursor(cursor):
    try:
        inner, _, count = base64.b64decode(cursor, validate=True).decode().rpartition(":")
        state = json.loads(base64.b64decode(inner, validate=True))
        n, synthetic = state.get("n"), state.get("synthetic", 0)
        if not (isinstance(n, int) and 0 <= n == int(count) and isinstance(synthetic, int)
                and 0 <= synthetic <= MAX_SYNTHETIC):
            raise ValueError
        return state
    except (ValueError, KeyError, TypeError, binascii.Error, UnicodeDecodeError):
        raise HubError(400, "Invalid cursor")


def synthetic_entry(d, i):
    path = (d + "/" if d else "") + "f%07d.txt" % i
    return {"type": "file", "oid": hashlib.sha1(path.encode()).hexdigest(), "size": 16 + i % 64,
            "path": path}


def hostile_entries(d, page):
    """Entries a client must reject (fault `hostile`)."""
    p = d + "/" if d else ""
    dup = dict(page[0]) if page else {"type": "file", "oid": "0" * 40, "size": 1,
                                       "path": p + "dup.txt"}
    dup["size"] = dup.get("size", 0) + 1

    def f(path, /, **kw):
        e = {"type": "file", "oid": "e" * 40, "size": 5, "path": path}
        e.update(kw)
        return e

    return [f(p + ".."), f(p + "."), f(p), f(p + "a//b.txt"), f(p + "nul\0name.txt"),
            f(p + "x" * 300), f(("elsewhere/" if d else "../") + "outside.txt"),
            f(p + "sub/deeper.txt"), dup, f(p + "link", type="symlink"),
            f(p + "negative.txt", size=-1), f(p + "absurd.bin", size=2 ** 64 + 1),
            f(p + "not-a-string", path=12345)]
# No invalid UTF-8 here: the Hub decodes git paths in Node, so bad bytes reach clients as
# U+FFFD (a legal name); raw bytes or a lone-surrogate escape would break the whole document,
# which is bad_json's job, not a per-entry check.


# ---------------------------------------------------------------------------------------------
# Route handlers. Each takes (state, request) and returns a Response or raises HubError.


def h_whoami(st, req):
    tok = req.tok
    if tok is None:
        raise HubError(401, MSG_BAD_LOGIN)
    user = st.fx.users[tok["user"]]
    orgs = [{"type": "org", "id": st.fx.orgs[o]["id"], "name": o,
             "fullname": st.fx.orgs[o]["fullname"], "email": None, "canPay": False,
             "avatarUrl": "/avatars/%s.svg" % o, "periodEnd": None, "roleInOrg": "write",
             "isEnterprise": True} for o in user["orgs"]]
    access = {"displayName": tok["display_name"], "role": tok["role"],
              "createdAt": tok["created_at"]}
    if tok["role"] == "fineGrained":
        scoped = []
        for etype, name, perms in tok["scoped"]:
            eid = st.fx.users[name]["id"] if etype == "user" else st.fx.orgs[name]["id"]
            scoped.append({"entity": {"_id": eid, "type": etype, "name": name},
                           "permissions": list(perms)})
        access["fineGrained"] = {"canReadGatedRepos": bool(tok["can_read_gated"]),
                                 "global": list(tok["global"]), "scoped": scoped}
    return json_response({
        "type": "user", "id": user["id"], "name": user["name"], "fullname": user["fullname"],
        "email": user["name"] + "@example.com", "emailVerified": True, "canPay": False,
        "isPro": False, "periodEnd": None, "billingMode": "prepaid",
        "avatarUrl": "/avatars/%s.svg" % user["name"], "orgs": orgs,
        "auth": {"type": "access_token", "accessToken": access},
    })


def repo_summary(repo, commit):
    """Properties of a repo as info and listings name them."""
    d = {"_id": repo.mongo_id, "id": repo.id, "author": repo.namespace, "sha": commit.sha,
         "lastModified": commit.date, "private": repo.private, "gated": repo.gated,
         "disabled": repo.disabled, "downloads": 0, "likes": 0,
         "tags": list(repo.extra.get("tags", [])), "createdAt": repo.created_at}
    if repo.type == "model":
        d["modelId"] = repo.id
        for k in ("pipeline_tag", "library_name"):
            if k in repo.extra:
                d[k] = repo.extra[k]
    if repo.type == "space":
        d["sdk"] = repo.extra.get("sdk")
        d["subdomain"] = repo.id.replace("/", "-").lower()
        d["runtime"] = {"stage": "RUNNING", "hardware": {"current": "cpu-basic",
                                                         "requested": "cpu-basic"}}
    return d


def siblings(commit, blobs):
    out = []
    for path in sorted(commit.files):
        s = {"rfilename": path}
        if blobs:
            b = commit.files[path]
            s.update(size=b.size, blobId=b.oid)
            if b.lfs:
                s["lfs"] = {"sha256": b.sha256, "size": b.size, "pointerSize": len(b.pointer)}
        out.append(s)
    return out


def expand_only(d, req):
    keys = req.params.get("expand")
    if not keys:
        return d
    return {k: v for k, v in d.items() if k in ("_id", "id") or k in keys}


def h_info(st, req):
    repo, commit = route_repo(st, req)
    info = repo_summary(repo, commit)
    info["siblings"] = siblings(commit, qbool(req.param("blobs", "false")))
    info["usedStorage"] = sum(b.size for b in commit.files.values())
    if repo.type == "model" and "library_name" in repo.extra:
        info["config"] = {"model_type": "tiny"}
    resp = json_response(expand_only(info, req))
    digest = base64.b64encode(hashlib.sha1(resp.body).digest()).decode()[:27]
    resp.headers.append(("ETag", 'W/"%x-%s"' % (len(resp.body), digest)))
    return resp


def h_tree(st, req):
    repo, commit = route_repo(st, req)
    rev = unquote(req.match["rev"])
    path = unquote(req.match["path"] or "").strip("/")
    recursive = qbool(req.param("recursive", "false"))
    expand = qbool(req.param("expand", "false"))
    page_size = int(st.setting("page_size"))
    if expand:
        page_size = min(page_size, EXPAND_PAGE_SIZE)
    try:
        limit = int(req.param("limit", page_size))
        if limit > 0:
            page_size = min(page_size, limit)
    except ValueError:
        pass
    page_size = max(1, page_size)
    cursor = req.param("cursor")
    state = read_cursor(cursor) if cursor else {}
    fault = req.fault["action"] if req.fault else None
    synthetic = state.get("synthetic")
    if fault == "huge_dir" and not cursor:
        synthetic = int(req.fault.get("entries", 100000))
    start = int(state.get("n", 0))
    if synthetic is not None:
        total = int(synthetic)
        page = [synthetic_entry(path, i) for i in range(start, min(total, start + page_size))]
    else:
        if path not in commit.dirs:
            msg = '%s does not exist on "%s"' % (path, rev)
            raise HubError(404, msg, "EntryNotFound")
        paths = commit.listing(path, recursive)
        total = len(paths)
        page = [entry(repo, commit, p, expand) for p in paths[start:start + page_size]]
    headers = []
    end = start + len(page)
    if end < total:
        nxt = {"file_name": page[-1]["path"], "tree_oid": commit.dirs.get(path, ""), "n": end}
        if synthetic is not None:
            nxt["synthetic"] = synthetic
        q = [("recursive", "true" if recursive else "false"),
             ("expand", "true" if expand else "false"), ("limit", str(page_size)),
             ("cursor", make_cursor(nxt))]
        url = "%s%s?%s" % (st.api_url, req.raw_path, urlencode(q))
        headers.append(("Link", '<%s>; rel="next"' % url))
    if fault == "hostile":
        page = page + hostile_entries(path, page)
    return json_response(page, headers=headers)


def h_paths_info(st, req):
    repo, commit = route_repo(st, req)
    ctype = (req.headers.get("Content-Type") or "").split(";")[0].strip().lower()
    try:
        if ctype == "application/json":
            body = json.loads(req.body or b"{}")
            paths, expand = body.get("paths", []), bool(body.get("expand", False))
        else:
            form = parse_qs(req.body.decode(), keep_blank_values=True)
            paths = form.get("paths", [])
            expand = qbool((form.get("expand") or ["false"])[0])
        if not isinstance(paths, list) or not all(isinstance(p, str) for p in paths):
            raise ValueError
    except (ValueError, AttributeError, UnicodeDecodeError):
        raise HubError(400, "Invalid body: expected paths")
    out, seen = [], set()
    for p in paths:
        p = p.strip("/")
        if p in seen or (p not in commit.files and (p == "" or p not in commit.dirs)):
            continue
        seen.add(p)
        out.append(entry(repo, commit, p, expand))
    return json_response(out)


def h_refs(st, req):
    repo, _ = route_repo(st, req)
    with st.lock:
        refs = dict(st.refs[(repo.type, repo.id)])
    out = {"branches": [], "converts": [], "tags": []}
    for name, sha in sorted(refs.items()):
        if name.startswith("refs/pr/"):
            if qbool(req.param("include_prs", "false")):
                out.setdefault("pullRequests", []).append(
                    {"name": name, "ref": name, "targetCommit": sha})
        elif name in repo.tags:
            out["tags"].append({"name": name, "ref": "refs/tags/" + name, "targetCommit": sha})
        else:
            out["branches"].append({"name": name, "ref": "refs/heads/" + name,
                                    "targetCommit": sha})
    if qbool(req.param("include_prs", "false")):
        out.setdefault("pullRequests", [])
    return json_response(out)


def h_xet_read_token(st, req):
    """Xet's token route (hub-api.md §4); the fake serves no CAS, so the token is inert."""
    repo, _ = route_repo(st, req, content=True)
    return json_response({"accessToken": "xet_fake_" + secrets.token_hex(16),
                          "exp": int(time.time()) + 3600, "casUrl": st.cdn_url})


def h_auth_check(st, req):
    route_repo(st, req, content=True)
    return text_response(200, "OK")  # [O] body


def synthetic_repo(type, author, i):
    """A listing entry of fault many_repos: NS/r0000000..., public."""
    rid = "%s/r%07d" % (author or "bulk", i)
    d = {"_id": "%024x" % (0xfa0000 + i), "id": rid, "private": False, "downloads": 0,
         "likes": 0, "tags": [], "createdAt": "2024-01-01T00:00:00.000Z"}
    if type == "model":
        d["modelId"] = rid
    return d


def h_list(st, req):
    type = TYPES[req.match["t"]]
    author = req.param("author")
    search = req.param("search")
    full = qbool(req.param("full", "false"))
    try:
        limit = max(1, min(LIST_PAGE_SIZE, int(req.param("limit", LIST_PAGE_SIZE))))
    except ValueError:
        raise HubError(400, "Invalid limit")
    visible = []
    for repo in sorted(st.fx.repos, key=lambda r: r.id):
        if repo.type != type or (author and repo.namespace != author):
            continue
        if search and search.lower() not in repo.id.lower():
            continue
        try:
            check_access(st, req, repo, content=False)
        except HubError as e:
            if e.message != MSG_DISABLED:
                continue
        visible.append(repo)
    cursor = req.param("cursor")
    state = read_cursor(cursor) if cursor else {}
    start = state["n"] if cursor else 0
    synthetic = state.get("synthetic")
    if req.fault and req.fault["action"] == "many_repos" and not cursor:
        synthetic = int(req.fault.get("entries", 25000))
    total = len(visible) if synthetic is None else synthetic
    items = []
    for i in range(start, min(total, start + limit)):
        if synthetic is not None:
            items.append(expand_only(synthetic_repo(type, author, i), req))
            continue
        repo = visible[i]
        commit = resolve_rev(st, repo, repo.default_branch)
        d = repo_summary(repo, commit)
        if full:
            d["siblings"] = siblings(commit, False)
        elif not req.params.get("expand"):
            for k in ("sha", "lastModified", "gated", "disabled", "author"):
                d.pop(k, None)
        items.append(expand_only(d, req))
    headers = []
    if start + limit < total:
        nxt = {"n": start + limit}
        if synthetic is not None:
            nxt["synthetic"] = synthetic
        q = [(k, v) for k, vs in req.params.items() if k != "cursor" for v in vs]
        q.append(("cursor", make_cursor(nxt)))
        headers.append(("Link", '<%s%s?%s>; rel="next"' % (st.api_url, req.raw_path,
                                                           urlencode(q))))
    return json_response(items, headers=headers)


def h_resolve(st, req):
    repo, commit = route_repo(st, req, content=True)
    path = unquote(req.match["path"])
    blob = commit.files.get(path)
    if blob is None:
        raise HubError(404, MSG_ENTRY_NOT_FOUND, "EntryNotFound",
                       [("X-Repo-Commit", commit.sha)])
    if blob.lfs:
        url = sign_cdn_url(st, repo, blob, path.rsplit("/", 1)[-1])
        headers = [("X-Repo-Commit", commit.sha), ("X-Linked-Size", str(blob.size)),
                   ("X-Linked-Etag", '"%s"' % blob.sha256)]
        if blob.xet_hash:
            headers += xet_headers(st, repo, commit, blob)
            if XET_FILEINFO in (req.headers.get("Accept") or ""):  # §4: JSON, no redirect
                return json_response({
                    "hash": blob.xet_hash, "etag": blob.sha256, "size": blob.size,
                    "refreshUrl": xet_token_url(st, repo, commit),
                    "reconstructionUrl": "%s/v1/reconstructions/%s" % (st.cdn_url,
                                                                       blob.xet_hash)},
                    headers=headers + [("Content-Type", XET_FILEINFO)])
        return text_response(302, "Found. Redirecting to %s" % url,
                             [("Location", url)] + headers)
    # [U] whether this 307 carries X-Repo-Commit/ETag: it does not here, so clients follow it.
    loc = "/api/resolve-cache/%ss/%s/%s/%s?%s=&etag=%s" % (
        repo.type, repo.id, commit.sha, quote(path), quote(unquote(req.raw_path), safe=""),
        quote('"%s"' % blob.oid, safe=""))
    return text_response(307, "Temporary Redirect. Redirecting to %s" % loc,
                         [("Location", loc)])


def h_resolve_cache(st, req):
    repo, commit = route_repo(st, req, content=True)
    path = unquote(req.match["path"])
    blob = commit.files.get(path)
    if blob is None:
        raise HubError(404, MSG_ENTRY_NOT_FOUND, "EntryNotFound",
                       [("X-Repo-Commit", commit.sha)])
    etag = blob.sha256 if blob.lfs else blob.oid
    return serve_bytes(req, blob.data, [("X-Repo-Commit", commit.sha), ("ETag", '"%s"' % etag),
                                        ("Content-Type", content_type(path))])


def h_raw(st, req):
    repo, commit = route_repo(st, req, content=True)
    path = unquote(req.match["path"])
    blob = commit.files.get(path)
    if blob is None:
        raise HubError(404, MSG_ENTRY_NOT_FOUND, "EntryNotFound",
                       [("X-Repo-Commit", commit.sha)])
    data = blob.pointer if blob.lfs else blob.data
    return serve_bytes(req, data, [("X-Repo-Commit", commit.sha), ("ETag", '"%s"' % blob.oid),
                                   ("Content-Type", "text/plain; charset=utf-8")])


def content_type(path):
    ctype = mimetypes.guess_type(path)[0] or "application/octet-stream"
    return ctype + "; charset=utf-8" if ctype.startswith("text/") else ctype


def parse_range(header, size):
    """(start, end) inclusive, "unsatisfiable", or None (ignore the header: 200)."""
    m = re.fullmatch(r"\s*bytes\s*=\s*(\d*)\s*-\s*(\d*)\s*", header or "")
    if not m or (m[1] == "" and m[2] == ""):
        return None
    if m[1] == "":
        n = int(m[2])
        if n == 0 or size == 0:
            return "unsatisfiable"
        return max(0, size - n), size - 1
    start = int(m[1])
    end = int(m[2]) if m[2] else size - 1
    if m[2] and end < start:
        return None  # syntactically invalid: ignored (RFC 9110 14.1.1)
    if start >= size:
        return "unsatisfiable"
    return start, min(end, size - 1)


def serve_bytes(req, data, headers, ignore_range=False, cdn=False):
    """200 / 206 / 416 for a file body, honouring a single Range."""
    if req.fault and req.fault["action"] == "wrong_size" and data:
        data = data[:-1]
    if req.fault and req.fault["action"] == "corrupt" and data:
        # same length, one byte flipped at "offset" (default: the middle):
        # only a whole-file sha256 check can tell
        off = int(req.fault.get("offset", len(data) // 2)) % len(data)
        data = data[:off] + bytes([data[off] ^ 0xFF]) + data[off + 1:]
    headers = headers + [("Accept-Ranges", "bytes")]
    rng = None if ignore_range else parse_range(req.headers.get("Range"), len(data))
    if rng == "unsatisfiable":
        headers.append(("Content-Range", "bytes */%d" % len(data)))
        headers = [(k, v) for k, v in headers if k.lower() != "content-type"]
        if cdn:
            return s3_error(416, "InvalidRange", "The requested range is not satisfiable",
                            headers)
        return json_response({"error": "Requested Range Not Satisfiable"}, 416, headers)
    if rng is None:
        return Response(200, headers, data)
    start, end = rng
    headers.append(("Content-Range", "bytes %d-%d/%d" % (start, end, len(data))))
    return Response(206, headers, data[start:end + 1])


# ---------------------------------------------------------------------------------------------
# CDN: signed URLs (AWS SigV4-shaped query, HMAC over path, date and lifetime)


def cdn_signature(st, generation, path, amz_date, expires):
    msg = "%d\n%s\n%s\n%s" % (generation, path, amz_date, expires)
    return hmac.new(st.secret, msg.encode(), hashlib.sha256).hexdigest()


def xet_token_url(st, repo, commit):
    return "%s/api/%ss/%s/xet-read-token/%s" % (st.api_url, repo.type, repo.id, commit.sha)


def xet_headers(st, repo, commit, blob):
    """What a Xet-backed file's resolve answer adds (hub-api.md §4)."""
    return [("X-Xet-Hash", blob.xet_hash),
            ("Link", '<%s>; rel="xet-auth", <%s/v1/reconstructions/%s>; '
             'rel="xet-reconstruction-info"' % (xet_token_url(st, repo, commit), st.cdn_url,
                                                 blob.xet_hash))]


def sign_cdn_url(st, repo, blob, filename):
    """A signed CDN URL: Xet files get the bridge's CloudFront-style query
    (Expires/Policy/Signature/Key-Pair-Id), other LFS files an S3 presigned X-Amz-* query."""
    now = time.time()
    amz_date = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(now))
    with st.lock:
        ttl = max(0, int(st.settings["url_ttl"]))
        generation = st.generation
    disposition = "inline; filename*=UTF-8''%s; filename=\"%s\";" % (
        quote(filename), filename.replace('"', ""))
    if blob.xet_hash and not st.cdn_base:
        path = "/xet-bridge-us/%s/%s" % (repo.mongo_id, blob.xet_hash)
        expires = str(int(now) + ttl)
        policy = base64.b64encode(json.dumps({"Statement": [{
            "Resource": st.cdn_url + path + "*",
            "Condition": {"DateLessThan": {"AWS:EpochTime": int(expires)}}}]}).encode())
        q = [("X-Xet-Cas-Uid", "public"), ("response-content-disposition", disposition),
             ("Expires", expires), ("Policy", policy.decode().replace("=", "_")),
             ("Signature", cdn_signature(st, generation, path, "cloudfront", expires)),
             ("Key-Pair-Id", CLOUDFRONT_KEY_PAIR)]
        return "%s%s?%s" % (st.cdn_url, path, urlencode(q, quote_via=quote))
    if st.cdn_base:  # an external server (nginx) serves --blob-dir; it ignores the query
        parts = urlsplit(st.cdn_base)
        base = "%s://%s" % (parts.scheme, parts.netloc)
        path = parts.path.rstrip("/") + "/" + blob.sha256
    else:
        p = repo.cdn_prefix
        base, path = st.cdn_url, "/repos/%s/%s/%s/%s" % (p[:2], p[2:4], p, blob.sha256)
    q = [("response-content-disposition", disposition),
         ("X-Amz-Algorithm", "AWS4-HMAC-SHA256"),
         ("X-Amz-Content-Sha256", "UNSIGNED-PAYLOAD"),
         ("X-Amz-Credential", "FAKEHUBKEY/%s/us-east-1/s3/aws4_request" % amz_date[:8]),
         ("X-Amz-Date", amz_date), ("X-Amz-Expires", str(ttl)),
         ("X-Amz-Signature", cdn_signature(st, generation, path, amz_date, str(ttl))),
         ("X-Amz-SignedHeaders", "host"), ("x-id", "GetObject")]
    return "%s%s?%s" % (base, path, urlencode(q, quote_via=quote))


def s3_error(status, code, message, headers=(), extra=""):
    body = ('<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>%s</Code><Message>%s</Message>'
            '%s<RequestId>%s</RequestId><HostId>fakehub</HostId></Error>'
            % (code, message, extra, secrets.token_hex(8).upper()))
    return Response(status, list(headers), body.encode(), "application/xml")


def check_cloudfront_signature(st, req):
    """None if the bridge's CloudFront-style query is valid now, else CloudFront's 403."""
    expires, sig = req.param("Expires", ""), req.param("Signature", "")
    with st.lock:
        generation = st.generation
    if not (expires and sig and req.param("Key-Pair-Id") == CLOUDFRONT_KEY_PAIR):
        return s3_error(403, "MissingKey", "Missing Key-Pair-Id query parameter or cookie value")
    for gen in range(generation, -1, -1):
        if hmac.compare_digest(cdn_signature(st, gen, req.raw_path, "cloudfront", expires), sig):
            break
    else:
        return s3_error(403, "AccessDenied", "Access denied")
    if gen != generation or not expires.isdigit() or time.time() > int(expires):
        return s3_error(403, "AccessDenied", "Access denied")
    return None


def check_cdn_signature(st, req):
    """None if the signed query is valid now, else the S3-style 403."""
    amz_date = req.param("X-Amz-Date", "")
    expires = req.param("X-Amz-Expires", "")
    sig = req.param("X-Amz-Signature", "")
    if not (amz_date and expires and sig):
        return s3_error(403, "AccessDenied", "Access Denied")
    with st.lock:
        generation = st.generation
    for gen in range(generation, -1, -1):
        if hmac.compare_digest(cdn_signature(st, gen, req.raw_path, amz_date, expires), sig):
            break
    else:
        return s3_error(403, "SignatureDoesNotMatch", "The request signature we calculated "
                        "does not match the signature you provided.")
    try:
        issued = calendar.timegm(time.strptime(amz_date, "%Y%m%dT%H%M%SZ"))
        deadline = issued + int(expires)
    except (ValueError, OverflowError):
        return s3_error(403, "AccessDenied", "Access Denied")
    if gen != generation or time.time() > deadline:
        stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(deadline))
        now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        return s3_error(403, "AccessDenied", "Request has expired", extra=(
            "<X-Amz-Expires>%s</X-Amz-Expires><Expires>%s</Expires><ServerTime>%s</ServerTime>"
            % (expires, stamp, now)))
    return None


def h_cdn(st, req):
    xet = req.match.groupdict().get("xet")
    denied = check_cloudfront_signature(st, req) if xet else check_cdn_signature(st, req)
    if denied:
        return denied
    blob = st.fx.xet_blobs.get(xet) if xet else st.fx.lfs_blobs.get(req.match["sha"])
    if blob is None:
        return s3_error(404, "NoSuchKey", "The specified key does not exist.")
    # [O] behind the Xet bridge the ETag is the Xet hash; S3 objects carry an MD5 ETag.
    etag = blob.xet_hash if xet else blob.md5
    headers = [("Content-Type", "binary/octet-stream"), ("ETag", '"%s"' % etag),
               ("Last-Modified", CDN_LAST_MODIFIED), ("X-Cache", "Miss from cloudfront"),
               ("Via", "1.1 fakehub.cloudfront.net (CloudFront)"), ("X-Amz-Cf-Pop", "FAKE1"),
               ("X-Amz-Cf-Id", secrets.token_urlsafe(30))]
    disposition = req.param("response-content-disposition")
    if disposition:
        headers.append(("Content-Disposition", disposition))
    return serve_bytes(req, blob.data, headers, st.setting("cdn_ignore_range"), cdn=True)


# ---------------------------------------------------------------------------------------------
# Control API (/_fake/ on the api origin; never recorded)


def control_body(req):
    try:
        body = json.loads(req.body or b"{}")
    except ValueError:
        raise HubError(400, "body must be JSON")
    if not isinstance(body, dict):
        raise HubError(400, "body must be a JSON object")
    return body


def control_repo(st, body):
    rid = body.get("repo")
    types = [body["type"]] if body.get("type") else ["model", "dataset", "space"]
    for t in types:
        repo = st.fx.repo(t, rid) if isinstance(rid, str) else None
        if repo:
            return repo
    raise HubError(400, "unknown repo %r" % (rid,))


def c_requests(st, req):
    with st.lock:
        rows = list(st.log)
    return json_response(rows)


def c_reset(st, req):
    st.reset()
    return json_response({"ok": True})


def c_fixture(st, req):
    with st.lock:
        refs = {k: dict(v) for k, v in st.refs.items()}
    return json_response(st.fx.to_json(refs))


def c_branch(st, req):
    body = control_body(req)
    repo = control_repo(st, body)
    branch = body.get("branch")
    if not isinstance(branch, str) or not branch:
        raise HubError(400, "branch required")
    with st.lock:
        refs = st.refs[(repo.type, repo.id)]
        sha = refs.get(body["to_ref"]) if "to_ref" in body else body.get("commit")
        if sha not in repo.commits:
            raise HubError(400, "commit must be one of the repo's fixture commits")
        refs[branch] = sha
    return json_response({"ok": True, "branch": branch, "commit": sha})


def c_grant(st, req):
    body = control_body(req)
    repo = control_repo(st, body)
    user = body.get("user")
    if user not in st.fx.users:
        raise HubError(400, "unknown user %r" % (user,))
    key = (repo.type, repo.id)
    with st.lock:
        st.pending[key].discard(user)
        st.grants[key].discard(user)
        if body.get("pending"):
            st.pending[key].add(user)
        elif not body.get("revoke"):
            st.grants[key].add(user)
    return json_response({"ok": True})


def c_token(st, req):
    body = control_body(req)
    with st.lock:
        tok = st.tokens.get(body.get("token"))
        if tok is None:
            raise HubError(400, "unknown token")
        if "can_read_gated" in body:
            tok["can_read_gated"] = bool(body["can_read_gated"])
        if "valid" in body:
            tok["valid"] = bool(body["valid"])
    return json_response({"ok": True})


SETTING_CHECKS = {
    "url_ttl": lambda v: isinstance(v, (int, float)) and v >= 0,
    "page_size": lambda v: isinstance(v, int) and v >= 1,
    "delay": lambda v: isinstance(v, (int, float)) and 0 <= v <= 600,
    "cdn_ignore_range": lambda v: isinstance(v, bool),
    "rate_limit": lambda v: v is None or (isinstance(v, dict) and all(
        k in ("api", "resolvers", "pages") and isinstance(q, int) and q >= 0
        for k, q in v.items())),
}


def c_settings(st, req):
    body = control_body(req)
    for k, v in body.items():
        if k not in SETTING_CHECKS or not SETTING_CHECKS[k](v):
            raise HubError(400, "bad setting %s=%r" % (k, v))
    with st.lock:
        st.settings.update(body)
        out = dict(st.settings)
    return json_response(out)


def c_expire(st, req):
    with st.lock:
        st.generation += 1
    return json_response({"ok": True})


def c_fault(st, req):
    body = control_body(req)
    action = body.get("action")
    if action not in FAULTS:
        raise HubError(400, "unknown action %r; known: %s" % (action, ", ".join(FAULTS)))
    if body.get("origin", "any") not in ("api", "cdn", "any"):
        raise HubError(400, "origin must be api, cdn or any")
    if not isinstance(body.get("match", ""), str):
        raise HubError(400, "match must be a string")
    for k in ("count", "status", "bytes", "entries", "t", "retry_after", "seconds"):
        v = body.get(k, 1)
        if isinstance(v, bool) or not isinstance(v, (int, float)) \
                or not 0 <= v <= MAX_SYNTHETIC:
            raise HubError(400, "%s must be a number" % k)
    if not 100 <= body.get("status", 503) <= 599:
        raise HubError(400, "status must be 100..599")
    if not isinstance(body.get("headers", {}), dict):
        raise HubError(400, "headers must be an object")
    fault = dict(body)
    fault.setdefault("match", "")
    fault.setdefault("origin", "any")
    fault["count"] = int(fault.get("count", 1))
    with st.lock:
        st.faults.append(fault)
    return json_response({"ok": True})


def c_faults(st, req):
    with st.lock:
        return json_response(list(st.faults))


# ---------------------------------------------------------------------------------------------
# ROUTES: (origin, methods, raw-path regex, handler). First match wins; the rate-limit
# bucket of a path is bucket_of(path).
# Regexes see the path as sent (percent-encoded), so a revision is always one segment.

_REPO = r"/api/(?P<t>models|datasets|spaces)/(?P<ns>[^/]+)/(?P<name>[^/]+)"
_RESOLVE = r"/(?:(?P<t>datasets|spaces)/)?(?P<ns>[^/]+)/(?P<name>[^/]+)"
ROUTES = [
    ("api", "GET HEAD", r"/api/whoami-v2", h_whoami),
    ("api", "GET HEAD", r"/api/(?P<t>models|datasets|spaces)", h_list),
    ("api", "GET HEAD", r"/api/resolve-cache/(?P<t>models|datasets|spaces)/(?P<ns>[^/]+)/"
     r"(?P<name>[^/]+)/(?P<rev>[^/]+)/(?P<path>.+)", h_resolve_cache),
    ("api", "GET HEAD", _REPO, h_info),
    ("api", "GET HEAD", _REPO + r"/revision/(?P<rev>[^/]+)", h_info),
    ("api", "GET HEAD", _REPO + r"/tree/(?P<rev>[^/]+)(?:/(?P<path>.*))?", h_tree),
    ("api", "POST", _REPO + r"/paths-info/(?P<rev>[^/]+)", h_paths_info),
    ("api", "GET HEAD", _REPO + r"/refs", h_refs),
    ("api", "GET HEAD", _REPO + r"/auth-check", h_auth_check),
    ("api", "GET HEAD", _REPO + r"/xet-read-token/(?P<rev>[^/]+)", h_xet_read_token),
    ("api", "GET HEAD", _RESOLVE + r"/resolve/(?P<rev>[^/]+)/(?P<path>.+)", h_resolve),
    ("api", "GET HEAD", _RESOLVE + r"/raw/(?P<rev>[^/]+)/(?P<path>.+)", h_raw),
    ("cdn", "GET HEAD", r"/repos/[0-9a-f]{2}/[0-9a-f]{2}/[0-9a-f]{64}/(?P<sha>[0-9a-f]{64})",
     h_cdn),
    ("cdn", "GET HEAD", r"/xet-bridge-us/[0-9a-f]{24}/(?P<xet>[0-9a-f]{64})", h_cdn),
]
ROUTES = [(o, m.split(), re.compile(p), h) for o, m, p, h in ROUTES]

CONTROL = {
    ("GET", "/_fake/requests"): c_requests, ("GET", "/_fake/fixture"): c_fixture,
    ("GET", "/_fake/faults"): c_faults, ("POST", "/_fake/reset"): c_reset,
    ("POST", "/_fake/branch"): c_branch, ("POST", "/_fake/grant"): c_grant,
    ("POST", "/_fake/token"): c_token, ("POST", "/_fake/settings"): c_settings,
    ("POST", "/_fake/expire"): c_expire, ("POST", "/_fake/fault"): c_fault,
}


def bucket_of(raw_path):
    if "/resolve/" in raw_path or raw_path.startswith("/api/resolve-cache/"):
        return "resolvers"
    return "api" if raw_path.startswith("/api/") else "pages"


def rename_redirect(st, req):
    """Legacy or renamed ids answer a relative 307 to the same route under the new id:
    /api/{type}s/<old>[/...] and /[datasets/|spaces/]<old>/(resolve|raw)/..."""
    segs = req.raw_path.split("/")  # segs[0] == ""
    if len(segs) >= 4 and segs[1] == "api" and segs[2] in TYPES:
        type, at = TYPES[segs[2]], 3
    elif len(segs) >= 3 and segs[1] in ("datasets", "spaces"):
        type, at = TYPES[segs[1]], 2
    else:
        type, at = "model", 1
    for width in (1, 2):
        if len(segs) < at + width:
            break
        repo = st.fx.aliases.get((type, "/".join(unquote(s) for s in segs[at:at + width])))
        rest = segs[at + width:]
        if repo and (at == 3 or rest[:1] in (["resolve"], ["raw"])):
            loc = "/".join(segs[:at] + repo.id.split("/") + rest)
            if req.query:
                loc += "?" + req.query
            return text_response(307, "Temporary Redirect. Redirecting to %s" % loc,
                                 [("Location", loc)])
    return None


def route(st, req):
    allowed = set()
    for origin, methods, pattern, handler in ROUTES:
        if origin != req.origin:
            continue
        m = pattern.fullmatch(req.raw_path)
        if not m:
            continue
        if req.method not in methods:
            allowed.update(methods)
            continue
        req.match = m
        return handler(st, req)
    if req.origin == "cdn":
        return s3_error(403, "AccessDenied", "Access Denied")
    if allowed:
        raise HubError(405, "Method Not Allowed", headers=[("Allow", ", ".join(sorted(allowed)))])
    redirect = rename_redirect(st, req)
    if redirect:
        return redirect
    raise HubError(404, MSG_NOT_FOUND_PAGE)


def error_response(req, e):
    headers = [("X-Error-Message", e.message)] + e.headers
    if e.code:
        headers.insert(0, ("X-Error-Code", e.code))
    if e.status == 401:
        headers.append(("WWW-Authenticate", WWW_AUTHENTICATE))
    if req.is_api_path or req.raw_path.startswith("/_fake/"):
        return json_response({"error": e.message}, e.status, headers)
    return text_response(e.status, e.message, headers)


# ---------------------------------------------------------------------------------------------
# FAULTS: every injectable fault. Phase "replace" answers instead of the route; "content"
# lets the route see req.fault (tree pages, file bodies); "after" edits the route's answer;
# "wire" changes how the answer is written to the socket (see Handler.write_response).


def f_status(st, req, fault):
    status = int(fault.get("status", 503))
    resp = error_response(req, HubError(status, status_phrase(status)))
    resp.headers = [(k, v) for k, v in resp.headers if k != "X-Error-Message"]
    for k, v in (fault.get("headers") or {}).items():
        resp.set_header(str(k), str(v))
    return resp


def f_ratelimit(st, req, fault):
    bucket = bucket_of(req.raw_path)
    t = int(fault.get("t", 1))
    quota = QUOTAS[req.tok is not None][bucket]
    headers = [("RateLimit", '"%s";r=0;t=%d' % (bucket, t)),
               ("RateLimit-Policy", '"fixed window";"%s";q=%d;w=%d' % (bucket, quota,
                                                                        RATE_WINDOW))]
    if "retry_after" in fault:
        headers.append(("Retry-After", str(int(fault["retry_after"]))))
    return error_response(req, HubError(429, MSG_RATE_LIMITED % bucket, headers=headers))


def f_bad_json(st, req, fault):
    return Response(200, [], b'{"id": "acme/tiny", "siblings": [{"rfilename": "con',
                    "application/json; charset=utf-8")


def f_redirect_loop(st, req, fault):
    loc = req.raw_path + ("?" + req.query if req.query else "")
    return text_response(302, "Found. Redirecting to %s" % loc, [("Location", loc)])


def f_wrong_range(st, req, fault, resp):
    m = re.fullmatch(r"bytes (\d+)-(\d+)/(\d+)", resp.header("Content-Range") or "")
    if resp.status == 206 and m:
        resp.set_header("Content-Range", "bytes %d-%d/%s" % (int(m[1]) + 1, int(m[2]) + 1,
                                                              m[3]))
    return resp


FAULTS = {
    "status": ("replace", f_status),
    "ratelimit": ("replace", f_ratelimit),
    "bad_json": ("replace", f_bad_json),
    "redirect_loop": ("replace", f_redirect_loop),
    "hostile": ("content", None),  # h_tree appends hostile_entries()
    "huge_dir": ("content", None),  # h_tree lists synthetic_entry() x fault["entries"]
    "many_repos": ("content", None),  # h_list lists synthetic_repo() x fault["entries"]
    "wrong_size": ("content", None),  # serve_bytes drops the last byte
    "corrupt": ("content", None),  # serve_bytes flips one byte, same length
    "wrong_range": ("after", f_wrong_range),
    "truncate": ("wire", None),
    "reset": ("wire", None),
    "stall": ("wire", None),
}


def take_fault(st, origin, raw_path, query):
    """The first queued fault matching this request, its count decremented. `match` is a
    substring of the path or query, raw or percent-decoded (a CDN URL names its file only in
    the query's response-content-disposition)."""
    target = raw_path + "?" + query
    haystacks = (target, unquote(target))
    with st.lock:
        for fault in st.faults:
            if fault["origin"] not in ("any", origin):
                continue
            if not any(fault["match"] in h for h in haystacks):
                continue
            fault["count"] -= 1
            if fault["count"] <= 0:
                st.faults.remove(fault)
            return dict(fault)
    return None


# ---------------------------------------------------------------------------------------------
# HTTP plumbing


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "fakehub"
    sys_version = ""
    timeout = SOCKET_TIMEOUT

    def log_message(self, fmt, *args):
        if not self.server.state.quiet:
            sys.stderr.write("fakehub %s %s\n" % (self.server.origin, fmt % args))

    def do_GET(self):
        self.serve()

    do_HEAD = do_POST = do_PUT = do_DELETE = do_PATCH = do_OPTIONS = do_GET

    def send_error(self, code, message=None, explain=None):
        """Errors raised by http.server itself (bad request line, header too long...)."""
        self.close_connection = True
        raw = getattr(self, "path", "") or ""
        req = Request(self.server.origin, getattr(self, "command", None) or "?",
                      raw.partition("?")[0], raw.partition("?")[2], {}, b"",
                      self.client_address[0])
        self.write_response(req, text_response(code, message or HTTPStatus(code).phrase,
                                               [("Connection", "close")]), record=True)

    def read_body(self):
        if self.headers.get("Transfer-Encoding"):
            raise HubError(411, "Length Required")
        try:
            n = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            raise HubError(400, "Bad Content-Length")
        if n < 0 or n > MAX_BODY:
            raise HubError(413, "Payload Too Large")
        return self.rfile.read(n) if n else b""

    def serve(self):
        st = self.server.state
        origin = self.server.origin
        target = self.path
        if re.match(r"^[a-zA-Z]+://", target):  # absolute-form request target
            target = "/" + target.split("/", 3)[3] if target.count("/") >= 3 else "/"
        raw_path, _, query = target.partition("?")
        req = Request(origin, self.command, raw_path, query, self.headers, b"",
                      self.client_address[0])
        control = origin == "api" and raw_path.startswith("/_fake/")
        try:
            try:
                req.body = self.read_body()
            except HubError:
                self.close_connection = True
                raise
            if control:
                handler = CONTROL.get((self.command, raw_path))
                if handler is None:
                    raise HubError(404, "unknown control route")
                resp = handler(st, req)
            else:
                resp = self.answer(st, req)
        except HubError as e:
            resp = error_response(req, e)
        except Exception:  # a bug in the fake must not take it down
            traceback.print_exc()
            resp = error_response(req, HubError(500, "Internal Error"))
        if not control:
            delay = float(st.setting("delay") or 0)
            if delay > 0:
                st.shutting_down.wait(delay)
        self.write_response(req, resp, record=not control)

    def answer(self, st, req):
        """A non-control request: fault, rate limit, authentication, route."""
        req.fault = take_fault(st, req.origin, req.raw_path, req.query)
        phase, fn = FAULTS[req.fault["action"]] if req.fault else (None, None)
        bucket = None if req.origin == "cdn" else bucket_of(req.raw_path)
        auth_error = None
        if req.origin == "api":
            try:
                authenticate(st, req)
            except HubError as e:
                auth_error = e
        try:
            if phase == "replace":  # a proxy or the front answers before authentication
                resp = fn(st, req, req.fault)
            elif auth_error:
                raise auth_error
            else:
                resp = route(st, req)
                if phase == "after":
                    resp = fn(st, req, req.fault, resp)
        except HubError as e:
            resp = error_response(req, e)
        if bucket and resp.header("RateLimit") is None:
            identity = req.tok["user"] if req.tok else "anon:" + req.client
            left, reset, quota, over = st.rate(bucket, identity, req.tok is not None)
            if over:
                resp = error_response(req, HubError(429, MSG_RATE_LIMITED % bucket))
            resp.headers.append(("RateLimit", '"%s";r=%d;t=%d' % (bucket, left, reset)))
            resp.headers.append(("RateLimit-Policy", '"fixed window";"%s";q=%d;w=%d'
                                 % (bucket, quota, RATE_WINDOW)))
        return resp

    def write_response(self, req, resp, record):
        """Writes status, headers and body; wire faults act here. Records the request first."""
        st = self.server.state
        hdrs = getattr(self, "headers", None) or {}
        headers = list(resp.headers)
        names = {k.lower() for k, _ in headers}
        if req.origin == "api":
            trace = hdrs.get("X-Amzn-Trace-Id")
            rid = "Root=1-%08x-%s" % (int(time.time()), secrets.token_hex(12))
            headers.append(("X-Request-Id", rid + (";" + trace if trace else "")))
            headers.append(("X-Powered-By", "huggingface-moon"))
            headers.append(("Access-Control-Expose-Headers", EXPOSE_HEADERS))
            headers.append(("Vary", "Origin"))
        if resp.status < 200 or resp.status in (204, 304):  # statuses that carry no body
            resp.body = b""
            headers = [(k, v) for k, v in headers if k.lower() != "content-type"]
        elif "content-type" not in names and resp.body:
            headers.append(("Content-Type", "application/octet-stream"))
        headers.append(("Date", self.date_time_string()))
        if resp.status >= 200 and resp.status != 204:
            headers.append(("Content-Length", str(len(resp.body))))
        if self.close_connection and "connection" not in names:
            headers.append(("Connection", "close"))
        fault = req.fault if req.fault and FAULTS[req.fault["action"]][0] == "wire" else None
        if record:
            auth = hdrs.get("Authorization")
            token = auth.strip().partition(" ")[2].strip() if auth else None
            st.record({"origin": req.origin, "method": req.method, "path": req.raw_path,
                       "query": req.query, "status": resp.status,
                       "range": hdrs.get("Range"),
                       "auth": auth is not None, "token": token or (auth or None),
                       "user_agent": hdrs.get("User-Agent"),
                       "t": time.time()})
        lines = ["HTTP/1.1 %d %s" % (resp.status, status_phrase(resp.status))]
        lines += ["%s: %s" % (k, header_value(v)) for k, v in headers]
        head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1", "replace")
        body = b"" if req.method == "HEAD" else resp.body
        self.log_request(resp.status, len(body))
        if fault is None:
            self.wfile.write(head + body)
            return
        action = fault["action"]
        n = int(fault.get("bytes", 0 if action == "stall" else len(body) // 2))
        if action != "stall":
            n = min(n, max(0, len(body) - 1))  # always short of the declared length
        part = body[:max(0, n)]
        self.wfile.write(head + part)
        if action == "truncate":
            self.close_connection = True
        elif action == "reset":
            self.close_connection = True
            self.rst()
        elif action == "stall":
            if st.shutting_down.wait(float(fault.get("seconds", 30))):
                self.close_connection = True
                return
            self.wfile.write(body[len(part):])

    def rst(self):
        """Close with SO_LINGER 0: the peer sees a TCP RST (ECONNRESET) after the bytes sent.
        The fd is closed directly: rfile/wfile hold references that would delay close()."""
        try:
            time.sleep(0.05)  # let the peer take the partial answer before the RST
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                                       struct.pack("ii", 1, 0))
            os.close(self.connection.detach())
        except OSError:
            pass

    def finish(self):
        try:
            super().finish()
        except OSError:
            pass

    def handle(self):
        try:
            super().handle()
        except (OSError, ValueError):
            pass  # the client went away, or a reset fault closed the socket


def status_phrase(status):
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Unknown"


def header_value(value):
    """Header values as the Hub would send them: printable ASCII, anything else escaped."""
    return re.sub(r"[^\x20-\x7e]", lambda m: quote(m[0]), str(value))


class Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128

    def __init__(self, addr, origin, state):
        self.origin = origin
        self.state = state
        super().__init__(addr, Handler)

    def handle_error(self, request, client_address):
        if not self.state.quiet:
            traceback.print_exc()


# ---------------------------------------------------------------------------------------------


def write_port_file(path, data):
    tmp = "%s.tmp.%d" % (path, os.getpid())
    with open(tmp, "w") as f:
        json.dump(data, f)
    os.replace(tmp, path)


def write_blobs(fx, blob_dir):
    os.makedirs(blob_dir, exist_ok=True)
    for sha, blob in fx.lfs_blobs.items():
        path = os.path.join(blob_dir, sha)
        if os.path.exists(path) and os.path.getsize(path) == blob.size:
            continue
        tmp = path + ".tmp"
        with open(tmp, "wb") as f:
            f.write(blob.data)
        os.replace(tmp, path)


def main(argv=None):
    ap = argparse.ArgumentParser(description="A faithful local Hugging Face Hub for tests.")
    ap.add_argument("--port-file", required=True, help="where to write {api, cdn} URLs as JSON")
    ap.add_argument("--api-host", default="127.0.0.1")
    ap.add_argument("--cdn-host", default="127.0.0.2")
    ap.add_argument("--blob-dir", help="also write every LFS blob to DIR/<sha256>")
    ap.add_argument("--cdn-base", help="LFS redirects point at URL/<sha256>?<signature>")
    ap.add_argument("--quiet", action="store_true", help="no request log on stderr")
    ap.add_argument("--repo", action="append", default=[], metavar="SPEC",
                    help="[datasets/|spaces/]NS/NAME=DIR: publish DIR's files as one commit")
    args = ap.parse_args(argv)

    try:
        fx = fixture.build([fixture.parse_spec(s) for s in args.repo])
    except (fixture.PublishError, OSError) as e:
        sys.stderr.write("fakehub: %s\n" % e)
        return 2
    if args.blob_dir:
        write_blobs(fx, args.blob_dir)
    state = State(fx, None, None, args.cdn_base, args.quiet)
    api = Server((args.api_host, 0), "api", state)
    cdn = Server((args.cdn_host, 0), "cdn", state)
    state.api_url = "http://%s:%d" % (args.api_host, api.server_address[1])
    state.cdn_url = "http://%s:%d" % (args.cdn_host, cdn.server_address[1])

    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    threads = [threading.Thread(target=s.serve_forever, kwargs={"poll_interval": 0.2},
                                daemon=True) for s in (api, cdn)]
    for t in threads:
        t.start()
    write_port_file(args.port_file, {"api": state.api_url, "cdn": state.cdn_url})
    if not args.quiet:
        sys.stderr.write("fakehub: api %s cdn %s\n" % (state.api_url, state.cdn_url))
    while not stop.wait(0.5):
        pass
    state.shutting_down.set()  # ends stalls and delays
    for s in (api, cdn):
        s.shutdown()
        s.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
