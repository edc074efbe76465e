"""The fake Hub's published repos (fakehub.py --repo, the repo_hub fixture):
files a test generates become one commit that hfmount mounts like any Hub
repo, whole-Hub and single-repo, with the large file behind LFS and the
CDN. The loader tests (llama.cpp, DuckDB, PyTorch, transformers.js) stand
on this."""
import hashlib
import os

import util

BIG = 12 * 1024 * 1024 + 123  # past the 10 MiB LFS threshold, not chunk-aligned


def pattern_bytes(n):
    """n bytes that differ at every offset (a shifted range shows)."""
    out = bytearray()
    i = 0
    while len(out) < n:
        out += hashlib.sha256(b'published %d' % i).digest()
        i += 1
    return bytes(out[:n])


def _publish(tmp_path):
    d = tmp_path / 'pub'
    files = {'hello.txt': b'hello from a published repo\n',
             'nested/deep/info.json': b'{"published": true}\n',
             'weights.bin': pattern_bytes(BIG)}
    for rel, data in files.items():
        p = d / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(data)
    return str(d), files


def _check(top, files):
    """The mounted tree holds exactly the published files (plus the
    .gitattributes the fake Hub adds), byte for byte."""
    got = util.walk_files(top)
    assert sorted(got) == sorted(list(files) + ['.gitattributes']), got
    for rel, data in files.items():
        mounted = util.read_bytes(os.path.join(top, *rel.split('/')))
        assert hashlib.sha256(mounted).hexdigest() == \
            hashlib.sha256(data).hexdigest(), rel


def _cdn_rows(h, sha256):
    return [r for r in h.requests()
            if util.classify(r) == 'cdn' and sha256 in (r.get('path') or '')]


def test_published_dir_mounts_whole_hub_and_single_repo(mount, repo_hub,
                                                        tmp_path):
    d, files = _publish(tmp_path)
    big_sha = hashlib.sha256(files['weights.bin']).hexdigest()
    h = repo_hub({'acme/pub': d, 'datasets/acme/pubdata': d})
    m = mount(endpoint=h.api)
    _check(m.path('acme', 'pub'), files)
    _check(m.path('datasets', 'acme', 'pubdata'), files)
    rows = h.requests()
    assert _cdn_rows(h, big_sha), 'weights.bin must come from the CDN:\n' + \
        util.fmt_rows(rows)
    assert not [r for r in rows if util.classify(r) == 'resolve-cache' and
                'weights.bin' in r.get('path', '')], util.fmt_rows(rows)

    s = mount('acme/pub', endpoint=h.api)
    before = len(_cdn_rows(h, big_sha))
    _check(s.mnt, files)
    assert util.getxattr(s.mnt, 'user.hf.commit') == \
        util.getxattr(m.path('acme', 'pub'), 'user.hf.commit')
    assert util.getxattr(s.mnt, 'user.hf.commit').decode() == \
        h.commit('model', 'acme/pub')
    assert len(_cdn_rows(h, big_sha)) > before, \
        'a second mount with its own cache reads through the CDN again'


def test_repo_hub_serves_several_hubs_in_one_test(repo_hub, tmp_path):
    d, files = _publish(tmp_path)
    a = repo_hub({'acme/one': d})
    b = repo_hub({'spaces/acme/two': d})
    assert a.api != b.api
    assert 'hello.txt' in a.files('model', 'acme/one')
    assert b.download('space', 'acme/two', 'main', 'hello.txt') == \
        files['hello.txt']
