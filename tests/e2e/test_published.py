"""The fake Hub's published repos (fakehub.py --repo, the repo_hub fixture):
files a test generates become one commit that hfmount mounts like any Hub
repo, whole-Hub and single-repo, with the large file behind LFS and the
CDN. The loader tests (llama.cpp, DuckDB, PyTorch, transformers.js) stand
on this."""
import hashlib
import os

import util


def _publish(tmp_path):
    d = tmp_path / 'pub'
    (d / 'nested' / 'deep').mkdir(parents=True)
    files = {'hello.txt': b'hello from a published repo\n',
             'nested/deep/info.json': b'{"published": true}\n',
             'weights.bin': util_bytes(12 * 1024 * 1024 + 123)}
    for rel, data in files.items():
        with open(d / rel, 'wb') as f:
            f.write(data)
    return str(d), files


def util_bytes(n):
    out = bytearray()
    i = 0
    while len(out) < n:
        out += hashlib.sha256(b'published %d' % i).digest()
        i += 1
    return bytes(out[:n])


def _check(top, files):
    got = util.walk_files(top)
    assert got == sorted(list(files) + ['.gitattributes']), got
    for rel, data in files.items():
        assert hashlib.sha256(util.read_bytes(
            os.path.join(top, *rel.split('/')))).hexdigest() == \
            hashlib.sha256(data).hexdigest(), rel


def test_published_dir_mounts_whole_hub_and_single_repo(mount, repo_hub,
                                                        tmp_path):
    d, files = _publish(tmp_path)
    h = repo_hub({'acme/pub': d, 'datasets/acme/pubdata': d})
    m = mount(endpoint=h.api)
    _check(m.path('acme', 'pub'), files)
    _check(m.path('datasets', 'acme', 'pubdata'), files)
    cdn = [r for r in h.requests() if util.classify(r) == 'cdn']
    assert cdn and all('weights.bin' in (r.get('query') or '') or
                       r.get('range') for r in cdn), util.fmt_rows(cdn)
    # regular files come from the Hub itself, the LFS one from the CDN
    assert not [r for r in cdn if 'hello.txt' in str(r.get('query'))]
    s = mount('acme/pub', endpoint=h.api)
    _check(s.mnt, files)
    assert util.getxattr(s.mnt, 'user.hf.commit') == \
        util.getxattr(m.path('acme', 'pub'), 'user.hf.commit')


def test_bad_repo_spec_exits_2(tmp_path):
    for spec in ('noslash=%s' % tmp_path, 'acme/x=%s/missing' % tmp_path,
                 'acme/x'):
        r = util.run_cmd([util.PYTHON, util.FAKEHUB, '--port-file',
                          str(tmp_path / 'p.json'), '--repo', spec])
        assert r.returncode == 2 and 'fakehub: --repo' in r.stderr, (spec, r)
