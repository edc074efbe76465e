"""Issue 6: Hugging Face's own JavaScript libraries, from npm, on mounted
paths.

- transformers.js (@huggingface/transformers) with env.localModelPath at the
  mount and remote loading off loads acme/tiny's tokenizer (tokenizer.json +
  tokenizer_config.json) and encodes a sentence to the ids the fixture's
  vocabulary gives;
- @huggingface/gguf reads the metadata of acme/tiny's tiny.gguf from the
  mounted path;
- offline: with netguard.mjs replacing globalThis.fetch (before the library
  binds it), http/https/net/tls/dns/dgram and child processes by functions
  that record and throw, transformers.js loads acme/tiny's config
  (AutoConfig) and tokenizer (AutoTokenizer) from the mount and never tries
  the network; the same guard does see it try once remote models are on;
- a tiny BERT-shaped encoder that tests/loaders/make_torch.py exports to
  ONNX with torch (Debian's python3-torch; the `onnx` package is not
  needed), published by `repo_hub` with its config and a WordPiece
  tokenizer, runs under transformers.js' AutoModel from the mount, offline,
  and gives torch's last_hidden_state for the same ids within 1e-4.

The scripts live in tests/jslibs and need `npm install --prefix tests/jslibs`
first (scripts/test.sh does it); without node_modules these tests fail and
say so.
"""
import json
import os
import re
import shutil
import struct

import pytest

import util

JS_DIR = os.path.join(util.REPO, 'tests', 'jslibs')
NODE_TIMEOUT = 120
TINY = ('model', 'acme/tiny')
# Known words, a word the vocabulary lacks ("is" -> [UNK]), punctuation split
# off by the Whitespace pre-tokenizer ("only!" -> "only", "!").
SENTENCE = 'hello world the tiny hub mount is read only!'


@pytest.fixture(scope='module')
def node():
    exe = shutil.which('node')
    if exe is None:
        pytest.fail('node is not on PATH: install nodejs and npm, then '
                    '`npm install --prefix tests/jslibs`', pytrace=False)
    for pkg in ('transformers', 'gguf'):
        if not os.path.isdir(os.path.join(JS_DIR, 'node_modules',
                                          '@huggingface', pkg)):
            pytest.fail('tests/jslibs/node_modules/@huggingface/%s is missing:'
                        ' run `npm install --prefix tests/jslibs` first'
                        % pkg, pytrace=False)
    return exe


def run_node(node, script, *args):
    r = util.run_cmd([node, os.path.join(JS_DIR, script)] + list(args),
                     timeout=NODE_TIMEOUT, cwd=JS_DIR)
    assert r.returncode == 0, '%s %s exited %d:\n%s\n%s' % (
        script, ' '.join(args), r.returncode, r.stdout[-3000:],
        r.stderr[-3000:])
    return json.loads(r.stdout.strip().splitlines()[-1])


# ------------------------------------------------------------ tokenizer ---

def expected_ids(tokenizer_json, text):
    """What a WordLevel model behind a Whitespace pre-tokenizer gives:
    split on \\w+|[^\\w\\s]+, look each piece up, unknown -> unk_token."""
    tok = json.loads(tokenizer_json)
    assert tok['pre_tokenizer']['type'] == 'Whitespace', tok['pre_tokenizer']
    assert tok['model']['type'] == 'WordLevel', tok['model']['type']
    vocab = tok['model']['vocab']
    unk = vocab[tok['model']['unk_token']]
    return [vocab.get(w, unk) for w in re.findall(r'\w+|[^\w\s]+', text)]


def mount_tiny(mount, layout):
    """(root, model) for env.localModelPath and from_pretrained(): the
    whole Hub mounted (model 'acme/tiny'), or acme/tiny alone (the mount
    point's parent and its name)."""
    if layout == 'whole-hub':
        return mount().mnt, 'acme/tiny'
    m = mount(spec='acme/tiny')
    return os.path.dirname(m.mnt), os.path.basename(m.mnt)


@pytest.mark.parametrize('layout', ['whole-hub', 'single-repo'])
def test_transformers_js_tokenizer_from_the_mount(mount, hub, node, layout):
    want = expected_ids(hub.download(*TINY, 'main', 'tokenizer.json'),
                        SENTENCE)
    assert 0 in want and len(set(want)) > 3, want  # the sentence is useful
    root, model = mount_tiny(mount, layout)
    hub.reset()
    got = run_node(node, 'tokenize.mjs', root, model, SENTENCE)
    assert got['ids'] == want, (
        'transformers.js encoded %r to %r, the fixture vocab gives %r'
        % (SENTENCE, got['ids'], want))
    read = {r['path'].rsplit('/', 1)[-1] for r in hub.requests()
            if util.classify(r) in ('resolve', 'resolve-cache')}
    assert {'tokenizer.json', 'tokenizer_config.json'} <= read, (
        'the tokenizer files were not read through the mount:\n%s'
        % util.fmt_rows(hub.requests()))


# ----------------------------------------------------------------- gguf ---

_SCALARS = {0: '<B', 1: '<b', 2: '<H', 3: '<h', 4: '<I', 5: '<i', 6: '<f',
            7: '<?', 10: '<Q', 11: '<q', 12: '<d'}


def parse_gguf(data):
    """(metadata, tensors) of a GGUF v2/v3 file, as @huggingface/gguf
    names them."""
    pos = 0

    def take(fmt):
        nonlocal pos
        v = struct.unpack_from(fmt, data, pos)[0]
        pos += struct.calcsize(fmt)
        return v

    def string():
        nonlocal pos
        n = take('<Q')
        s = data[pos:pos + n].decode('utf-8')
        pos += n
        return s

    def value(t):
        if t == 8:
            return string()
        if t == 9:
            et, n = take('<I'), take('<Q')
            return [value(et) for _ in range(n)]
        return take(_SCALARS[t])

    assert data[:4] == b'GGUF', 'not a GGUF file: %r' % data[:4]
    pos = 4
    meta = {'version': take('<I')}
    meta['tensor_count'] = take('<Q')
    meta['kv_count'] = take('<Q')
    for _ in range(meta['kv_count']):
        key = string()
        meta[key] = value(take('<I'))
    tensors = []
    for _ in range(meta['tensor_count']):
        name = string()
        dims = [take('<Q') for _ in range(take('<I'))]
        dtype = take('<I')
        take('<Q')  # offset
        tensors.append({'name': name, 'shape': dims, 'dtype': dtype})
    return meta, tensors


def _norm(v):
    """JSON from node carries 64-bit integers as strings: compare numbers
    as strings on both sides."""
    if isinstance(v, list):
        return [_norm(x) for x in v]
    if isinstance(v, dict):
        return {k: _norm(x) for k, x in v.items()}
    if isinstance(v, bool) or v is None:
        return v
    if isinstance(v, float) and v.is_integer():
        return str(int(v))
    return str(v)


def test_gguf_reads_metadata_from_the_mount(mount, hub, node):
    meta, tensors = parse_gguf(hub.download(*TINY, 'main', 'tiny.gguf'))
    assert meta['general.architecture'] and meta['general.name'], meta
    m = mount()
    hub.reset()
    got = run_node(node, 'gguf_meta.mjs', m.path('acme', 'tiny', 'tiny.gguf'))
    gm = got['metadata']
    assert gm.get('general.architecture') == meta['general.architecture'], gm
    assert gm.get('general.name') == meta['general.name'], gm
    assert _norm(gm) == _norm(meta), (gm, meta)
    assert _norm(got['tensors']) == _norm(tensors), (got['tensors'], tensors)
    assert [r for r in hub.requests() if util.classify(r) == 'cdn'], (
        'tiny.gguf was not read through the mount:\n%s'
        % util.fmt_rows(hub.requests()))


# ------------------------------------------------------ offline loading ---

MAKE_TORCH = os.path.join(util.REPO, 'tests', 'loaders', 'make_torch.py')
TORCH_TIMEOUT = 120
BERT_ID = 'acme/tinybert'
# Mixed case (the tokenizer lowercases: 'BERT' -> 'bert'), punctuation split
# off, and a piece the vocabulary lacks (':' -> [UNK]).
BERT_SENTENCE = 'Hello, world: the tiny BERT reads from a mount!'


def run_offline(node, root, model, what, text, *extra):
    """offline_load.mjs under netguard.mjs: its JSON, failing on an error
    unless the caller passes 'remote' (the guard's self-check)."""
    r = util.run_cmd([node, os.path.join(JS_DIR, 'offline_load.mjs'), root,
                      model, what, text] + list(extra),
                     timeout=NODE_TIMEOUT, cwd=JS_DIR)
    assert r.returncode == 0, 'offline_load.mjs exited %d:\n%s\n%s' % (
        r.returncode, r.stdout[-3000:], r.stderr[-3000:])
    out = json.loads(r.stdout.strip().splitlines()[-1])
    if 'remote' not in extra:
        assert 'error' not in out, 'transformers.js failed: %s' % out['error']
    return out


def test_netguard_sees_transformers_js_reach_for_the_network(node, tmp_path):
    # Remote models on, nothing local: transformers.js must try the Hub, and
    # the guard must catch it. Without this, an empty "network" list in the
    # offline tests could mean a guard that sees nothing.
    out = run_offline(node, str(tmp_path), 'acme/not-here', 'config', 'x',
                      'remote')
    targets = [a['target'] for a in out['network']]
    assert any('acme/not-here/resolve/main/config.json' in t
               for t in targets), out
    assert 'netguard' in out.get('error', ''), out
    # Every other way out is guarded too (imported the way libraries do).
    probe = '''
import { attempts } from './netguard.mjs';
import http from 'node:http';
import { request } from 'node:https';
import net from 'node:net';
import { lookup } from 'node:dns';
import { execFile } from 'node:child_process';
const tries = [
  () => fetch('http://127.0.0.1:9/'),
  () => http.get('http://127.0.0.1:9/'),
  () => request('https://127.0.0.1:9/'),
  () => net.connect(9, '127.0.0.1'),
  () => new net.Socket().connect(9, '127.0.0.1'),
  () => lookup('huggingface.co', () => {}),
  () => execFile('curl', ['http://127.0.0.1:9/']),
];
let thrown = 0;
for (const t of tries) { try { t(); } catch (e) { thrown++; } }
console.log(JSON.stringify({ thrown, attempts: attempts.map((a) => a.via) }));
'''
    r = util.run_cmd([node, '--input-type=module', '-e', probe],
                     timeout=NODE_TIMEOUT, cwd=JS_DIR)
    assert r.returncode == 0, r.stderr[-3000:]
    got = json.loads(r.stdout.strip().splitlines()[-1])
    assert got['thrown'] == 7 and len(got['attempts']) == 7, got


@pytest.mark.parametrize('layout', ['whole-hub', 'single-repo'])
def test_transformers_js_config_and_tokenizer_offline(mount, hub, node,
                                                      layout):
    config = json.loads(hub.download(*TINY, 'main', 'config.json'))
    want = expected_ids(hub.download(*TINY, 'main', 'tokenizer.json'),
                        SENTENCE)
    root, model = mount_tiny(mount, layout)
    hub.reset()
    out = run_offline(node, root, model, 'config,tokenizer', SENTENCE)
    assert out['network'] == [], (
        'transformers.js tried the network: %r' % out['network'])
    for k, v in config.items():
        assert out['config'].get(k) == v, (
            'AutoConfig %s = %r, config.json has %r'
            % (k, out['config'].get(k), v))
    assert out['ids'] == want, (out['ids'], want)
    read = {r['path'].rsplit('/', 1)[-1] for r in hub.requests()
            if util.classify(r) in ('resolve', 'resolve-cache')}
    assert {'config.json', 'tokenizer.json',
            'tokenizer_config.json'} <= read, (
        'the files were not read through the mount:\n%s'
        % util.fmt_rows(hub.requests()))


@pytest.fixture(scope='module')
def tiny_bert(tmp_path_factory):
    """tests/loaders/make_torch.py's BERT: (dir, torch's reference)."""
    d = str(tmp_path_factory.mktemp('tinybert'))
    r = util.run_cmd([util.PYTHON, MAKE_TORCH, 'bert', d, BERT_SENTENCE],
                     timeout=TORCH_TIMEOUT)
    if 'needs PyTorch' in r.stderr:
        pytest.fail('PyTorch is missing for %s: apt-get install -y '
                    'python3-torch' % util.PYTHON, pytrace=False)
    assert r.returncode == 0, 'make_torch.py bert exited %d:\n%s' % (
        r.returncode, r.stderr[-3000:])
    return d, json.loads(r.stdout.strip().splitlines()[-1])


def test_transformers_js_runs_onnx_model_from_mount(mount, repo_hub, node,
                                                    tiny_bert):
    src, ref = tiny_bert
    h = repo_hub({BERT_ID: src})
    m = mount(endpoint=h.api)
    out = run_offline(node, m.mnt, BERT_ID, 'config,tokenizer,model',
                      BERT_SENTENCE)
    assert out['network'] == [], (
        'transformers.js tried the network: %r' % out['network'])
    assert out['config']['model_type'] == 'bert', out['config']
    assert out['ids'] == ref['ids'], (
        'transformers.js encoded %r to %r, the tokenizer gives %r'
        % (BERT_SENTENCE, out['ids'], ref['ids']))
    assert out['output']['dims'] == ref['dims'], (out['output']['dims'],
                                                  ref['dims'])
    got, want = out['output']['data'], ref['data']
    assert len(got) == len(want)
    worst = max(abs(a - b) for a, b in zip(got, want))
    assert worst <= 1e-4, (
        'last_hidden_state differs from torch by up to %g' % worst)
    with open(os.path.join(src, 'onnx', 'model.onnx'), 'rb') as f:
        onnx = util.sha256(f.read())
    rows = h.requests()
    assert any(util.classify(r) == 'cdn' and onnx in (r.get('path') or '')
               for r in rows), (
        'onnx/model.onnx did not come through the mount from the CDN:\n%s'
        % util.fmt_rows(rows))
    read = {r['path'].rsplit('/', 1)[-1] for r in rows
            if util.classify(r) in ('resolve', 'resolve-cache')}
    assert {'config.json', 'tokenizer.json',
            'tokenizer_config.json'} <= read, (
        'the files were not read through the mount:\n%s'
        % util.fmt_rows(rows))
