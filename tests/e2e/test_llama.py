"""llama.cpp loads a model straight from an hfmount mount.

tests/loaders/make_gguf.py writes a tiny llama-architecture GGUF (about
13 MiB of seeded random F32 weights: several of hfmount's 4 MiB cache
chunks); the `repo_hub` fixture publishes it as model acme/llm on a fake Hub
of its own, and hfmount mounts that Hub. tests/loaders/llama/generate.mjs
then runs llama.cpp through node-llama-cpp (its prebuilt CPU binary, mmap on,
greedy decoding) on the mounted path and on the local copy:

- both give the same prompt tokens, the same N generated tokens and the same
  text, and a model of another seed gives other tokens (so the comparison
  depends on the weights hfmount served);
- the weights came through the CDN with Range requests (request log rows of
  origin 'cdn') that together cover every 4 MiB chunk of the file;
- the mounted file's sha256 is the local one's.

Needs node and `npm ci --prefix tests/loaders/llama` first (node-llama-cpp
3.21.1 and @node-llama-cpp/linux-x64); without them the test fails and says
so.
"""
import hashlib
import json
import os
import re
import shutil
import sys

import pytest

import util

LOADERS = os.path.join(util.REPO, 'tests', 'loaders')
JS_DIR = os.path.join(LOADERS, 'llama')
GENERATE = os.path.join(JS_DIR, 'generate.mjs')
NODE_TIMEOUT = 120  # one generate.mjs run (about 3 s locally, more on ASan)
N_TOKENS = 16
MODEL = 'tiny-llama.gguf'
SEED = 0
CHUNK = 4 << 20  # hfmount's cache chunk

sys.path.insert(0, LOADERS)
import make_gguf  # noqa: E402  (tests/loaders is not a package)

INSTALL = ('run `npm ci --prefix tests/loaders/llama` (needs Debian\'s nodejs '
           'and npm: apt-get install -y nodejs npm)')


@pytest.fixture(scope='module')
def node():
    exe = shutil.which('node')
    if exe is None:
        pytest.fail('node is not on PATH: ' + INSTALL, pytrace=False)
    for pkg in ('node-llama-cpp', '@node-llama-cpp/linux-x64'):
        if not os.path.isfile(os.path.join(JS_DIR, 'node_modules', pkg,
                                           'package.json')):
            pytest.fail('%s is not installed in %s/node_modules: %s'
                        % (pkg, JS_DIR, INSTALL), pytrace=False)
    return exe


def generate(node, model_path):
    """generate.mjs on model_path: its JSON line as a dict."""
    env = dict(os.environ, NODE_LLAMA_CPP_SKIP_DOWNLOAD='true')
    r = util.run_cmd([node, GENERATE, model_path, str(N_TOKENS)],
                     timeout=NODE_TIMEOUT, env=env, cwd=JS_DIR)
    assert r.returncode == 0, (
        'generate.mjs %s exited %d:\n%s\n%s'
        % (model_path, r.returncode, util.tail(r.stderr), util.tail(r.stdout)))
    lines = [ln for ln in r.stdout.splitlines() if ln.startswith('{')]
    assert len(lines) == 1, ('generate.mjs %s printed no single JSON line:\n%s'
                             % (model_path, r.stdout))
    out = json.loads(lines[0])
    assert out['model'] == model_path and out['useMmap'] is True, out
    return out


def parse_range(value, size):
    """(first, last) bytes of a 'bytes=a-b' / 'bytes=a-' header."""
    m = re.fullmatch(r'bytes=(\d+)-(\d*)', value.strip())
    assert m, 'unexpected Range header %r' % value
    first = int(m.group(1))
    last = int(m.group(2)) if m.group(2) else size - 1
    return first, min(last, size - 1)


def file_sha256(path):
    def run():
        h = hashlib.sha256()
        with open(path, 'rb') as f:
            for block in iter(lambda: f.read(1 << 20), b''):
                h.update(block)
        return h.hexdigest()
    return util.bounded(run, what='sha256 of %r' % path)


def test_llama_generates_from_mount_as_from_local_copy(node, repo_hub, mount,
                                                       tmp_path):
    src = tmp_path / 'acme-llm'
    src.mkdir()
    local = str(src / MODEL)
    info = make_gguf.write_gguf(local, SEED)
    size = os.path.getsize(local)
    assert size == info['size'] and size > 2 * CHUNK, size
    other = str(tmp_path / 'other-seed.gguf')
    make_gguf.write_gguf(other, SEED + 1)

    h = repo_hub({'acme/llm': str(src)})
    m = mount(endpoint=h.api)
    mounted = m.path('acme', 'llm', MODEL)
    st = util.stat(mounted)
    assert st.st_size == size, (st.st_size, size)

    got = generate(node, mounted)
    rows = h.requests()  # before anything else reads the file
    want = generate(node, local)
    for key in ('prompt', 'promptTokens', 'tokens', 'text'):
        assert got[key] == want[key], (
            '%s differs: mounted %r, local %r' % (key, got[key], want[key]))
    assert len(want['tokens']) == N_TOKENS and want['text'], want
    assert len(want['promptTokens']) > 2, want
    control = generate(node, other)
    assert control['tokens'] != want['tokens'], (
        'a model of another seed generated the same tokens %r: the test does '
        'not depend on the weights' % want['tokens'])

    cdn = [r for r in rows if r.get('origin') == 'cdn'
           and r.get('method') == 'GET']
    assert cdn, ('no GET on the CDN origin: the model was not read through '
                 'the CDN\n%s' % util.fmt_rows(rows))
    unranged = [r for r in cdn if not r.get('range')]
    assert not unranged, ('CDN GETs without a Range header:\n%s'
                          % util.fmt_rows(unranged))
    bad = [r for r in cdn if r.get('status') != 206]
    assert not bad, 'CDN GETs not answered 206:\n%s' % util.fmt_rows(bad)
    touched = set()
    for r in cdn:
        first, last = parse_range(r['range'], size)
        touched.update(range(first // CHUNK, last // CHUNK + 1))
    n_chunks = (size + CHUNK - 1) // CHUNK
    assert touched == set(range(n_chunks)), (
        'CDN ranges cover chunks %s of %d:\n%s'
        % (sorted(touched), n_chunks, util.fmt_rows(cdn)))

    assert file_sha256(mounted) == file_sha256(local)
    errors = [ln for ln in m.log_text().splitlines() if ' error: ' in ln]
    assert not errors, 'hfmount logged errors:\n' + '\n'.join(errors)
