"""Extended attributes: user.hf.commit on the repo dir and every file,
user.hf.oid (git blob sha1, LFS sha256) and user.hf.size on files."""
import errno
import os

import pytest

import util
from util import getxattr, listxattr

NAMES = ('user.hf.commit', 'user.hf.oid', 'user.hf.size')


@pytest.mark.parametrize('type,repo_id,prefix,rel', [
    ('model', 'acme/tiny', '', 'config.json'),
    ('model', 'acme/tiny', '', 'model.safetensors'),
    ('model', 'acme/tiny', '', 'nested/a/b/deep.txt'),
    ('model', 'acme/tiny', '', 'dir with space/file #1?.txt'),
    ('dataset', 'acme/data', 'datasets', 'data/train.parquet'),
    ('dataset', 'acme/data', 'datasets', 'data/train.csv'),
    ('space', 'acme/demo', 'spaces', 'app.py'),
])
def test_file_xattrs(mount, hub, type, repo_id, prefix, rel):
    m = mount()
    top = m.path(prefix, *repo_id.split('/'))
    path = os.path.join(top, *rel.split('/'))
    info = hub.files(type, repo_id, 'main')[rel]
    commit = hub.commit(type, repo_id, 'main')
    want = {
        'user.hf.commit': commit,
        'user.hf.oid': util.expected_oid(info),
        'user.hf.size': str(info['size']),
    }
    for name, value in want.items():
        got = getxattr(path, name)
        assert got == value.encode(), '%s of %s: %r, want %r' % (
            name, rel, got, value)
    names = listxattr(path)
    assert set(NAMES) <= set(names), 'listxattr %s: %r' % (rel, names)
    assert getxattr(top, 'user.hf.commit') == commit.encode(), (
        'user.hf.commit of the repo directory')
    assert 'user.hf.commit' in listxattr(top)


def test_lfs_oid_is_sha256_and_regular_oid_is_sha1(mount, hub):
    m = mount()
    top = m.path('acme', 'tiny')
    lfs = getxattr(os.path.join(top, 'model.safetensors'), 'user.hf.oid')
    reg = getxattr(os.path.join(top, 'config.json'), 'user.hf.oid')
    assert len(lfs) == 64 and len(reg) == 40, (lfs, reg)
    data = util.read_bytes(os.path.join(top, 'config.json'))
    assert reg.decode() == util.git_blob_sha1(data)


def test_directory_commit_xattr_nested(mount, hub):
    m = mount()
    commit = hub.commit('model', 'acme/tiny', 'main').encode()
    for d in ('nested', 'nested/a'):
        got = getxattr(m.path('acme', 'tiny', *d.split('/')),
                       'user.hf.commit')
        assert got == commit, 'user.hf.commit of %s: %r' % (d, got)


@pytest.mark.parametrize('rel', ['acme/tiny', 'acme/tiny/config.json',
                                 'acme/tiny/model.safetensors'])
def test_missing_xattr_is_enodata(mount, rel):
    m = mount()
    util.expect_errno(errno.ENODATA, os.getxattr, m.path(*rel.split('/')),
                      'user.hf.no-such-attribute',
                      what='getxattr user.hf.no-such-attribute on ' + rel)
    util.expect_errno(errno.ENODATA, os.getxattr, m.path(*rel.split('/')),
                      'user.hf.commit2', what='getxattr user.hf.commit2 on ' + rel)
