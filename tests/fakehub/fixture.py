"""fixture.py - the deterministic content of tests/fakehub (the fake Hugging Face Hub).

Every byte is derived from fixed seeds, so sizes and hashes are the same on every run and
machine. `build()` returns a `Fixture`: repos (with their commits, refs and files), users, orgs
and tokens. fakehub.py serves it; tests import it (or read `GET /_fake/fixture`) to know what the
Hub should answer. See README.md beside this file for the list of repos and tokens.

Hashes follow git and git-lfs:
  - a file's `oid` is the git blob id of what git stores: sha1(b"blob <len>\\0" + bytes) of the
    content for a regular file, of the LFS pointer for an LFS file;
  - `sha256` is the LFS content hash (None for regular files);
  - `xet_hash` (64 hex) marks a Xet-backed LFS file (tiny.gguf); it stands in for Xet's
    merkle hash and is not computed like it;
  - a directory's `oid` is a git tree id computed from its entries like git does.

Standard library only; import time well under a second (blobs come from Random.randbytes).
"""

import array
import fnmatch
import hashlib
import io
import json
import os
import random
import re
import struct
import tarfile

# ---------------------------------------------------------------------------------------------
# Objects


class Blob:
    """One file's content, shared by every commit that has the same bytes."""

    __slots__ = ("data", "lfs", "size", "oid", "sha256", "pointer", "xet_hash", "_md5")

    def __init__(self, data, lfs=False, xet=False):
        self.data = bytes(data)
        self.lfs = lfs or xet
        self.size = len(self.data)
        self._md5 = None
        self.xet_hash = None
        if self.lfs:
            self.sha256 = hashlib.sha256(self.data).hexdigest()
            self.pointer = lfs_pointer(self.sha256, self.size)
            self.oid = git_blob_oid(self.pointer)
            if xet:  # a stand-in for Xet's merkle hash: 64 hex, differs from sha256
                self.xet_hash = hashlib.sha256(b"xet " + self.sha256.encode()).hexdigest()
        else:
            self.sha256 = None
            self.pointer = None
            self.oid = git_blob_oid(self.data)

    @property
    def md5(self):
        """S3-style ETag of the blob on the CDN (computed on first use)."""
        if self._md5 is None:
            self._md5 = hashlib.md5(self.data).hexdigest()
        return self._md5


class Commit:
    """A commit: fixed sha, date and title, a parent (or None) and a flat {path: Blob}."""

    def __init__(self, sha, date, title, parent, files):
        self.sha = sha
        self.date = date
        self.title = title
        self.parent = parent  # Commit or None
        self.files = dict(files)
        self.dirs = {}  # dir path ("" = root) -> git tree oid
        self.children = {}  # dir path -> [(name, is_dir)] in listing order
        self._listings = {}  # (dir, recursive) -> [path], filled on demand
        self._index()

    def _index(self):
        kids = {"": {}}
        for path in self.files:
            parts = path.split("/")
            for depth in range(len(parts)):
                parent = "/".join(parts[:depth])
                name = parts[depth]
                is_dir = depth < len(parts) - 1
                kids.setdefault(parent, {})[name] = is_dir
                if is_dir:
                    kids.setdefault("/".join(parts[: depth + 1]), {})
        # Tree ids bottom-up (deepest directories first), git's entry order and format.
        for d in sorted(kids, key=lambda p: -p.count("/") if p else 1):
            entries = []
            for name, is_dir in kids[d].items():
                full = d + "/" + name if d else name
                oid = self.dirs[full] if is_dir else self.files[full].oid
                entries.append((name + "/" if is_dir else name, is_dir, name, oid))
            entries.sort(key=lambda e: e[0].encode())
            body = b"".join(
                (b"40000 " if is_dir else b"100644 ") + name.encode() + b"\0" + bytes.fromhex(oid)
                for _, is_dir, name, oid in entries
            )
            self.dirs[d] = git_object_oid(b"tree", body)
        # Listing order seen on the Hub: directories first, then files, each by name.
        for d, names in kids.items():
            self.children[d] = sorted(names.items(), key=lambda kv: (not kv[1], kv[0]))

    def listing(self, d, recursive):
        """Paths under directory d: one level, or every descendant in pre-order (a directory
        before its contents); directories before files at each level."""
        key = (d, recursive)
        if key not in self._listings:  # racing threads compute the same list: harmless
            out = []
            for name, is_dir in self.children[d]:
                full = d + "/" + name if d else name
                out.append(full)
                if recursive and is_dir:
                    out.extend(self.listing(full, True))
            self._listings[key] = out
        return self._listings[key]

    def oid_at(self, path):
        """Blob or tree oid of `path` in this commit, None if absent."""
        if path in self.files:
            return self.files[path].oid
        return self.dirs.get(path)

    def last_commit(self, path):
        """The newest commit in this commit's ancestry that changed `path`."""
        c = self
        oid = c.oid_at(path)
        while c.parent is not None and c.parent.oid_at(path) == oid:
            c = c.parent
        return c


class Repo:
    def __init__(self, type, id, commits, refs, default_branch="main", private=False,
                 gated=False, disabled=False, created_at="2023-01-01T00:00:00.000Z",
                 aliases=(), extra=None, grants=(), pending=()):
        self.type = type  # "model" | "dataset" | "space"
        self.id = id
        self.namespace = id.split("/")[0]
        self.commits = {c.sha: c for c in commits}
        self.refs = dict(refs)  # "main" / "v1.0" / "refs/pr/1" -> sha
        self.branches = [r for r in refs if not r.startswith("refs/") and r not in TAGS]
        self.tags = [r for r in refs if r in TAGS]
        self.default_branch = default_branch
        self.private = private
        self.gated = gated  # False | "auto" | "manual"
        self.disabled = disabled
        self.created_at = created_at
        self.aliases = list(aliases)  # old ids answering a 307 to this one
        self.extra = dict(extra or {})  # pipeline_tag, library_name, sdk...
        self.grants = set(grants)  # users granted a gated repo
        self.pending = set(pending)  # users whose gate request awaits review
        self.mongo_id = hashlib.sha1(("repo " + type + " " + id).encode()).hexdigest()[:24]
        self.cdn_prefix = hashlib.sha256((type + "/" + id).encode()).hexdigest()


class Fixture:
    def __init__(self, repos, users, orgs, tokens):
        self.repos = repos  # [Repo]
        self.users = users  # name -> dict
        self.orgs = orgs  # name -> dict
        self.tokens = tokens  # token string -> dict
        self.by_key = {(r.type, r.id): r for r in repos}
        self.aliases = {(r.type, a): r for r in repos for a in r.aliases}
        self.lfs_blobs = {}  # sha256 -> Blob, what the CDN serves
        self.xet_blobs = {}  # xet hash -> Blob, what the CDN's Xet bridge serves
        for r in repos:
            for c in r.commits.values():
                for b in c.files.values():
                    if b.lfs:
                        self.lfs_blobs[b.sha256] = b
                    if b.xet_hash:
                        self.xet_blobs[b.xet_hash] = b

    def repo(self, type, id):
        return self.by_key.get((type, id))

    def to_json(self, refs=None):
        """The shape of GET /_fake/fixture; `refs` overrides {(type, id): {ref: sha}}."""
        out = []
        for r in self.repos:
            cur = (refs or {}).get((r.type, r.id), r.refs)
            out.append({
                "type": r.type, "id": r.id, "private": r.private, "gated": r.gated,
                "disabled": r.disabled, "aliases": r.aliases,
                "default_branch": r.default_branch, "refs": dict(cur),
                "commits": {
                    c.sha: {
                        "date": c.date, "title": c.title,
                        "parent": c.parent.sha if c.parent else None,
                        "files": {p: {"size": b.size, "oid": b.oid, "sha256": b.sha256,
                                      "xet_hash": b.xet_hash}
                                  for p, b in sorted(c.files.items())},
                    } for c in r.commits.values()
                },
            })
        return {"repos": out}


# ---------------------------------------------------------------------------------------------
# Hashing and file formats


def git_object_oid(kind, body):
    return hashlib.sha1(kind + b" %d\0" % len(body) + body).hexdigest()


def git_blob_oid(data):
    return git_object_oid(b"blob", data)


def lfs_pointer(sha256, size):
    return ("version https://git-lfs.github.com/spec/v1\noid sha256:%s\nsize %d\n"
            % (sha256, size)).encode()


def fixed_sha(label):
    """A fixed 40-hex commit sha, stable across runs."""
    return hashlib.sha1(("fakehub commit " + label).encode()).hexdigest()


def rand_bytes(seed, n):
    return random.Random(seed).randbytes(n)


# Keeps every float32 finite and in (-2, 2): the top byte of each little-endian float becomes
# sign | 0x3C..0x3F, i.e. exponents 120..127.
_FLOAT_TOP_BYTE = bytes((b & 0x80) | 0x3C | (b & 0x03) for b in range(256))


def f32_bytes(seed, count):
    data = bytearray(rand_bytes(seed, 4 * count))
    data[3::4] = bytes(data[3::4]).translate(_FLOAT_TOP_BYTE)
    return bytes(data)


def safetensors(tensors, metadata=None):
    """tensors: [(name, shape, f32 little-endian bytes)] -> a valid .safetensors file."""
    header, offset = {}, 0
    for name, shape, data in tensors:
        header[name] = {"dtype": "F32", "shape": list(shape),
                        "data_offsets": [offset, offset + len(data)]}
        offset += len(data)
    header["__metadata__"] = metadata or {"format": "pt"}
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * (-(8 + len(h)) % 8)
    return struct.pack("<Q", len(h)) + h + b"".join(t[2] for t in tensors)


GGUF_UINT32, GGUF_STRING, GGUF_F32 = 4, 8, 0


def gguf(kv, tensors, alignment=32):
    """A GGUF v3 file: kv = [(key, "str"|"u32", value)], tensors = [(name, dims, f32 bytes)]."""

    def s(text):
        b = text.encode()
        return struct.pack("<Q", len(b)) + b

    out = [b"GGUF", struct.pack("<IQQ", 3, len(tensors), len(kv))]
    for key, kind, value in kv:
        if kind == "str":
            out.append(s(key) + struct.pack("<I", GGUF_STRING) + s(value))
        else:
            out.append(s(key) + struct.pack("<II", GGUF_UINT32, value))
    offset = 0
    for name, dims, data in tensors:
        out.append(s(name) + struct.pack("<I", len(dims)))
        out.append(b"".join(struct.pack("<Q", d) for d in dims))
        out.append(struct.pack("<IQ", GGUF_F32, offset))
        offset += len(data) + (-len(data) % alignment)
    head = b"".join(out)
    body = [b"\0" * (-len(head) % alignment)]
    for _, _, data in tensors:
        body.append(data + b"\0" * (-len(data) % alignment))
    return head + b"".join(body)


def tar_bytes(members):
    """members: [(name, bytes or None for a directory)] -> deterministic ustar archive."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        for name, data in members:
            info = tarfile.TarInfo(name)
            info.mtime = 1704067200  # 2024-01-01T00:00:00Z
            info.uid = info.gid = 0
            info.uname = info.gname = "root"
            if data is None:
                info.type = tarfile.DIRTYPE
                info.mode = 0o755
                tar.addfile(info)
            else:
                info.mode = 0o644
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def jbytes(obj):
    return (json.dumps(obj, indent=2) + "\n").encode()


# ---------------------------------------------------------------------------------------------
# Tokenizer: WordLevel, whitespace pre-tokenizer. "hello world" -> [1, 2].

TOKENIZER_WORDS = ["[UNK]", "hello", "world", "the", "a", "tiny", "model", "fake", "hub", "mount",
                   "file", "read", "only", "test", "data", "token", "word", "level", "config",
                   "acme", "!"]
TOKENIZER_VOCAB = {w: i for i, w in enumerate(TOKENIZER_WORDS)}


def tokenizer_json():
    return jbytes({
        "version": "1.0",
        "truncation": None,
        "padding": None,
        "added_tokens": [{"id": 0, "content": "[UNK]", "single_word": False, "lstrip": False,
                          "rstrip": False, "normalized": False, "special": True}],
        "normalizer": None,
        "pre_tokenizer": {"type": "Whitespace"},
        "post_processor": None,
        "decoder": None,
        "model": {"type": "WordLevel", "vocab": TOKENIZER_VOCAB, "unk_token": "[UNK]"},
    })


def tokenizer_config_json():
    return jbytes({"tokenizer_class": "PreTrainedTokenizerFast", "unk_token": "[UNK]",
                   "model_max_length": 512, "clean_up_tokenization_spaces": False})


# ---------------------------------------------------------------------------------------------
# The repos

TAGS = {"v1.0"}
GITATTRIBUTES = (b"*.safetensors filter=lfs diff=lfs merge=lfs -text\n"
                 b"*.gguf filter=lfs diff=lfs merge=lfs -text\n"
                 b"*.tar filter=lfs diff=lfs merge=lfs -text\n"
                 b"*.parquet filter=lfs diff=lfs merge=lfs -text\n")

TINY_EMBED_SHAPE = (1024, 4096)
TINY_BIAS_SHAPE = (4096,)


def _config(rev):
    return jbytes({"architectures": ["TinyForCausalLM"], "model_type": "tiny",
                   "hidden_size": 4096, "vocab_size": len(TOKENIZER_WORDS),
                   "torch_dtype": "float32", "fakehub_revision": rev})


def _tiny_repo():
    embed = f32_bytes("acme/tiny embed", TINY_EMBED_SHAPE[0] * TINY_EMBED_SHAPE[1])
    bias = array.array("f", (i / 4096.0 for i in range(TINY_BIAS_SHAPE[0])))
    if array.array("H", [1]).tobytes() != b"\x01\x00":
        bias.byteswap()  # safetensors is little-endian
    st = Blob(safetensors([("embed", TINY_EMBED_SHAPE, embed), ("bias", TINY_BIAS_SHAPE,
                                                                 bias.tobytes())]), lfs=True)
    tiny_gguf = Blob(gguf(
        [("general.architecture", "str", "llama"), ("general.name", "str", "tiny"),
         ("general.alignment", "u32", 32), ("llama.context_length", "u32", 128)],
        [("token_embd.weight", (4, 2), struct.pack("<8f", *[i / 8 for i in range(8)]))]),
        xet=True)
    archive = Blob(tar_bytes([
        ("archive", None),
        ("archive/hello.txt", b"hello from inside the tar\n"),
        ("archive/sub", None),
        ("archive/sub/note.md", b"# note\n\nA file two levels down in archive.tar.\n"),
        ("archive/random.bin", rand_bytes("acme/tiny archive", 4096)),
    ]), lfs=True)
    readme = Blob(b"---\nlicense: mit\nlibrary_name: transformers\npipeline_tag: text-generation\n"
                  b"---\n\n# acme/tiny\n\nA tiny model served by tests/fakehub.\n")
    common = {
        ".gitattributes": Blob(GITATTRIBUTES),
        "README.md": readme,
        "tokenizer.json": Blob(tokenizer_json()),
        "tokenizer_config.json": Blob(tokenizer_config_json()),
        "model.safetensors": st,
        "nested/a/b/deep.txt": Blob(b"deep inside nested/a/b\n"),
        "nested/a/info.json": Blob(jbytes({"level": "nested/a"})),
        "dir with space/file #1?.txt": Blob(b"a path with reserved URL bytes: space # ?\n"),
        "archive.tar": archive,
    }
    many = {"many/f%04d.txt" % i: Blob(b"many file %04d\n" % i) for i in range(1500)}

    m0 = Commit(fixed_sha("acme/tiny M0"), "2024-01-01T00:00:00.000Z", "Initial commit", None,
                {**common, "config.json": Blob(_config("v1.0"))})
    m1 = Commit(fixed_sha("acme/tiny M1"), "2024-06-01T12:00:00.000Z", "Add many/ and tiny.gguf",
                m0, {**common, **many, "tiny.gguf": tiny_gguf,
                     "config.json": Blob(_config("main"))})
    m2 = Commit(fixed_sha("acme/tiny M2"), "2024-09-01T08:30:00.000Z", "dev: new config", m1,
                {**m1.files, "config.json": Blob(_config("dev")),
                 "dev-only.txt": Blob(b"only on the dev branch\n")})
    m3 = Commit(fixed_sha("acme/tiny M3"), "2024-10-01T16:45:00.000Z", "PR #1: try a config", m1,
                {**m1.files, "config.json": Blob(_config("refs/pr/1")),
                 "pr-only.txt": Blob(b"only in refs/pr/1\n")})
    return Repo("model", "acme/tiny", [m0, m1, m2, m3],
                {"main": m1.sha, "dev": m2.sha, "v1.0": m0.sha, "refs/pr/1": m3.sha},
                created_at="2023-12-15T10:00:00.000Z",
                extra={"pipeline_tag": "text-generation", "library_name": "transformers",
                       "tags": ["transformers", "safetensors", "gguf", "text-generation"]})


def _single(type, id, label, date, files, **kw):
    c = Commit(fixed_sha(label), date, "Initial commit", None, files)
    return Repo(type, id, [c], {"main": c.sha}, **kw)


def _repos():
    train_rows = "".join("%d,sample %d,%d\n" % (i, i, i % 2) for i in range(200))
    parquet = b"PAR1" + rand_bytes("acme/data parquet", 1024 * 1024 - 8) + b"PAR1"
    small_st = safetensors([("w", (64, 64), f32_bytes("meta-llama w", 64 * 64))])
    return [
        _tiny_repo(),
        _single("dataset", "acme/data", "acme/data D1", "2024-03-03T03:03:03.000Z", {
            ".gitattributes": Blob(GITATTRIBUTES),
            "README.md": Blob(b"---\nlicense: cc0-1.0\n---\n\n# acme/data\n"),
            "data/train.csv": Blob(("id,text,label\n" + train_rows).encode()),
            "data/test.csv": Blob(b"id,text,label\n0,test zero,0\n1,test one,1\n"),
            "data/train.parquet": Blob(parquet, lfs=True),
        }, created_at="2024-03-01T00:00:00.000Z", extra={"tags": ["license:cc0-1.0"]}),
        _single("space", "acme/demo", "acme/demo S1", "2024-04-04T04:04:04.000Z", {
            "README.md": Blob(b"---\ntitle: Demo\nsdk: gradio\nsdk_version: 4.0.0\n"
                              b"app_file: app.py\n---\n"),
            "app.py": Blob(b"import gradio as gr\n\ngr.Interface(lambda x: x, 'text', 'text')"
                           b".launch()\n"),
            "requirements.txt": Blob(b"gradio\n"),
        }, created_at="2024-04-01T00:00:00.000Z", extra={"sdk": "gradio", "tags": ["gradio"]}),
        _single("model", "meta-llama/Llama-3.1-8B-Instruct", "meta-llama G1",
                "2024-09-25T14:00:00.000Z", {
                    ".gitattributes": Blob(GITATTRIBUTES),
                    "README.md": Blob(b"# Llama (fake)\n\nGated: request access.\n"),
                    "config.json": Blob(jbytes({"model_type": "llama", "fake": True})),
                    "model.safetensors": Blob(small_st, lfs=True),
                }, gated="manual", created_at="2024-07-18T08:56:00.000Z",
                grants={"alice"}, pending={"carol"},
                extra={"pipeline_tag": "text-generation", "library_name": "transformers"}),
        _single("dataset", "acme/gated-data", "acme/gated-data G2", "2024-05-05T05:05:05.000Z", {
            "README.md": Blob(b"# gated data\n"),
            "data.csv": Blob(b"a,b\n1,2\n"),
        }, gated="auto", created_at="2024-05-01T00:00:00.000Z", grants={"alice"}),
        _single("model", "acme/private", "acme/private P1", "2024-02-02T02:02:02.000Z", {
            "config.json": Blob(jbytes({"model_type": "tiny", "private": True})),
        }, private=True, created_at="2024-02-01T00:00:00.000Z"),
        _single("model", "acme/disabled", "acme/disabled X1", "2024-02-03T00:00:00.000Z", {
            "config.json": Blob(jbytes({"model_type": "tiny", "disabled": True})),
        }, disabled=True, created_at="2024-02-03T00:00:00.000Z"),
        _single("model", "openai-community/gpt2", "gpt2 R1", "2024-02-19T10:00:00.000Z", {
            "README.md": Blob(b"# gpt2 (fake)\n"),
            "config.json": Blob(jbytes({"model_type": "gpt2", "n_layer": 12})),
        }, aliases=["gpt2"], created_at="2022-03-02T23:29:04.000Z",
            extra={"pipeline_tag": "text-generation", "library_name": "transformers"}),
    ]


def _oid(label):
    return hashlib.sha1(("fakehub entity " + label).encode()).hexdigest()[:24]


USERS = {
    "alice": {"fullname": "Alice Example", "orgs": ["acme"]},
    "bob": {"fullname": "Bob Example", "orgs": []},
    "carol": {"fullname": "Carol Example", "orgs": []},
    "dave": {"fullname": "Dave Example", "orgs": ["acme"]},
}
# acme requires tokens to be approved by the org (Enterprise token policy); `approved` lists
# the tokens it approved. Only the org's private repos are guarded by the policy here.
ORGS = {"acme": {"fullname": "ACME Corp", "token_policy": "require_approval"}}

CONTENT_READ = ["repo.content.read", "repo.access.read"]

TOKENS = {
    "hf_alice_read_0123456789abcdef": {
        "user": "alice", "role": "read", "display_name": "alice-read"},
    "hf_alice_fg_nogated_0123456789": {
        "user": "alice", "role": "fineGrained", "display_name": "alice-fg-nogated",
        "can_read_gated": False, "global": ["discussion.write", "post.write"],
        "scoped": [("user", "alice", CONTENT_READ), ("org", "acme", CONTENT_READ)]},
    "hf_alice_fg_norepo_0123456789a": {
        "user": "alice", "role": "fineGrained", "display_name": "alice-fg-norepo",
        "can_read_gated": True, "global": [], "scoped": []},
    "hf_bob_read_0123456789abcdef01": {
        "user": "bob", "role": "read", "display_name": "bob-read"},
    "hf_carol_read_0123456789abcdef": {
        "user": "carol", "role": "read", "display_name": "carol-read"},
    "hf_org_policy_0123456789abcdef": {
        "user": "dave", "role": "read", "display_name": "dave-read", "org_blocked": ["acme"]},
}
for _t in TOKENS.values():
    _t.setdefault("valid", True)
    _t.setdefault("org_blocked", [])
    _t.setdefault("created_at", "2024-01-15T09:00:00.000Z")


# What the Hub's default .gitattributes sends to LFS; a published file also
# goes there at LFS_MIN_BYTES or more (the Hub refuses larger plain files).
LFS_PATTERNS = ("*.safetensors", "*.gguf", "*.bin", "*.pt", "*.pth", "*.ckpt", "*.onnx",
                "*.parquet", "*.arrow", "*.h5", "*.msgpack", "*.npy", "*.npz", "*.model",
                "*.tar", "*.zip", "*.gz", "*.zst")
LFS_MIN_BYTES = 10 * 1024 * 1024
REPO_TYPES = {"datasets": "dataset", "spaces": "space"}


class PublishError(ValueError):
    """A --repo SPEC the fake Hub cannot publish."""


def parse_spec(spec):
    """'[datasets/|spaces/]NS/NAME=DIR' -> (type, id, dir)."""
    name, sep, d = spec.partition("=")
    if not sep or not d:
        raise PublishError("--repo %r: want [datasets/|spaces/]NS/NAME=DIR" % spec)
    parts = name.split("/")
    type = "model"
    if len(parts) == 3 and parts[0] in REPO_TYPES:
        type = REPO_TYPES[parts.pop(0)]
    if len(parts) != 2 or not all(re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]{0,95}", p)
                                  and ".." not in p for p in parts):
        raise PublishError("--repo %r: %r is not a repo id NS/NAME" % (spec, name))
    return type, "/".join(parts), d


def name_ok(rel):
    """False for a path the Hub refuses: not UTF-8, an empty, "." or ".."
    component, or anything under a .git/ folder."""
    try:
        rel.encode("utf-8")
    except UnicodeEncodeError:  # os.walk's surrogate escapes of non-UTF-8 bytes
        return False
    return not any(c in ("", ".", "..", ".git") for c in rel.split("/"))


def published_repo(type, id, top):
    """A repo of one commit on main holding every regular file under top:
    LFS by the patterns above or by size, a .gitattributes added if top has
    none. The commit sha derives from the names and bytes."""
    if not os.path.isdir(top):
        raise PublishError("--repo %s: %r is not a directory" % (id, top))
    files = {}
    digest = hashlib.sha1(("published %s %s" % (type, id)).encode())
    for d, dirs, names in os.walk(top):
        dirs.sort()
        for n in sorted(names) + [x for x in dirs if os.path.islink(os.path.join(d, x))]:
            p = os.path.join(d, n)
            rel = os.path.relpath(p, top).replace(os.sep, "/")
            if os.path.islink(p):
                raise PublishError("--repo %s: %r is a symbolic link" % (id, rel))
            if not os.path.isfile(p):
                raise PublishError("--repo %s: %r is not a regular file" % (id, rel))
            if not name_ok(rel):
                raise PublishError("--repo %s: the Hub refuses the name %r" % (id, rel))
            with open(p, "rb") as f:
                data = f.read()
            lfs = len(data) >= LFS_MIN_BYTES or any(fnmatch.fnmatch(n, pat)
                                                    for pat in LFS_PATTERNS)
            files[rel] = Blob(data, lfs=lfs)
            digest.update(b"%s\0%d\0" % (rel.encode(), len(data)))
            digest.update(hashlib.sha256(data).digest())
    if ".gitattributes" not in files:
        files[".gitattributes"] = Blob("".join("%s filter=lfs diff=lfs merge=lfs -text\n" % p
                                               for p in LFS_PATTERNS).encode())
    c = Commit(digest.hexdigest(), "2025-01-01T00:00:00.000Z", "Upload folder", None, files)
    return Repo(type, id, [c], {"main": c.sha}, created_at="2025-01-01T00:00:00.000Z")


def build(published=()):
    """The whole fixture; about 0.3 s. published: (type, id, dir) of repos
    made from directories (fakehub.py --repo), after the built-in ones."""
    users = {n: dict(u, id=_oid("user " + n), name=n) for n, u in USERS.items()}
    orgs = {n: dict(o, id=_oid("org " + n), name=n) for n, o in ORGS.items()}
    tokens = {t: dict(v) for t, v in TOKENS.items()}
    repos = _repos()
    for type, id, d in published:
        if any(r.type == type and r.id.lower() == id.lower() for r in repos):
            raise PublishError("--repo %s: the Hub has that repo already (fixture or "
                               "an earlier --repo)" % id)
        repos.append(published_repo(type, id, d))
    return Fixture(repos, users, orgs, tokens)


if __name__ == "__main__":
    import sys
    import time

    t0 = time.monotonic()
    fx = build()
    print("built in %.3f s" % (time.monotonic() - t0), file=sys.stderr)
    json.dump(fx.to_json(), sys.stdout, indent=1)
