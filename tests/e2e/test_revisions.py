"""Revisions in whole-Hub mode (MNT/NS/NAME@REV) and pinning: a repo view
stays on the commit its revision resolved to at first lookup."""
import os

import pytest

import util
from util import listdir, read_bytes, getxattr, stat

MODEL = ('model', 'acme/tiny')


def _commit_xattr(path):
    return getxattr(path, 'user.hf.commit').decode()


@pytest.mark.parametrize('rev', ['dev', 'v1.0', 'sha-of-main',
                                 'refs%2Fpr%2F1'])
def test_revision_directory(mount, hub, rev):
    if rev == 'sha-of-main':
        rev = hub.commit(*MODEL, 'main')
    commit = hub.commit(*MODEL, rev)
    files = hub.files(*MODEL, rev)
    m = mount()
    top = m.path('acme', 'tiny@' + rev)
    data = read_bytes(os.path.join(top, 'config.json'))
    util.check_content(data, files['config.json'],
                       'MNT/acme/tiny@%s/config.json' % rev)
    assert _commit_xattr(top) == commit, (
        'user.hf.commit of MNT/acme/tiny@%s: want %s' % (rev, commit))
    assert _commit_xattr(os.path.join(top, 'config.json')) == commit
    got = sorted(listdir(top))
    want = hub.children(*MODEL, rev)
    assert got == want, 'ls MNT/acme/tiny@%s: %r, fixture %r' % (rev, got,
                                                                 want)
    assert int(stat(top).st_mtime) == hub.date(*MODEL, rev), (
        'mtime of MNT/acme/tiny@%s is not the commit date' % rev)


def test_revisions_differ_from_main(hub):
    """Guards the test above: the fixture's config.json differs per ref."""
    oids = {r: hub.files(*MODEL, r)['config.json']['oid']
            for r in ('main', 'dev', 'v1.0', 'refs/pr/1')}
    assert len(set(oids.values())) == 4, oids


@pytest.mark.parametrize('rev', ['no-such-branch', '0' * 40,
                                 'refs%2Fpr%2F999'])
def test_unknown_revision_is_enoent(mount, rev):
    m = mount()
    util.expect_errno(2, os.stat, m.path('acme', 'tiny@' + rev),
                      what='stat MNT/acme/tiny@' + rev)


def _move_main_to_dev(hub):
    m1 = hub.commit(*MODEL, 'main')
    m2 = hub.commit(*MODEL, 'dev')
    hub.branch('acme/tiny', 'main', commit=m2)
    moved = hub.info('model', 'acme/tiny', 'main')['sha']
    assert moved == m2, 'fake Hub: main did not move to %s (%s)' % (m2, moved)
    return m1, m2


def test_pinned_after_read(mount, hub):
    """Read config.json, move main to dev's commit: the same repo view keeps
    the old bytes, commit xattr and listing."""
    m = mount()
    top = m.path('acme', 'tiny')
    cfg = os.path.join(top, 'config.json')
    info_m1 = hub.files(*MODEL, 'main')['config.json']
    util.check_content(read_bytes(cfg), info_m1, 'config.json before')
    m1, m2 = _move_main_to_dev(hub)
    util.check_content(read_bytes(cfg), info_m1, 'config.json after the move')
    assert _commit_xattr(top) == m1, 'repo dir commit changed after the move'
    assert _commit_xattr(cfg) == m1, 'config.json commit changed after move'
    names = listdir(top)
    assert 'dev-only.txt' not in names, (
        'dev-only.txt (commit %s) appears in a view pinned to %s' % (m2, m1))
    with pytest.raises(FileNotFoundError):
        stat(os.path.join(top, 'dev-only.txt'))


def test_pinned_at_first_lookup(mount, hub):
    """Only look the repo up (keeping it open), move main, then list and
    read: everything comes from the commit seen at lookup."""
    m = mount()
    top = m.path('acme', 'tiny')
    fd = util.open_fd(top, os.O_RDONLY | os.O_DIRECTORY)
    try:
        m1 = hub.commit(*MODEL, 'main')
        assert _commit_xattr(top) == m1
        _, m2 = _move_main_to_dev(hub)
        names = sorted(listdir(top))
        assert names == hub.children(*MODEL, m1), (
            'listing after the move: %r; want commit %s\'s root' % (names,
                                                                   m1))
        util.check_content(read_bytes(os.path.join(top, 'config.json')),
                           hub.files(*MODEL, m1)['config.json'],
                           'config.json read after the move')
        assert _commit_xattr(os.path.join(top, 'config.json')) == m1
    finally:
        util.close_fd(fd)
    # A fresh mount resolves main again and sees the moved branch.
    m_new = mount()
    top2 = m_new.path('acme', 'tiny')
    assert _commit_xattr(top2) == m2, 'a new mount must see main at %s' % m2
    util.check_content(read_bytes(os.path.join(top2, 'config.json')),
                       hub.files(*MODEL, m2)['config.json'],
                       'config.json in a new mount after the move')
    assert 'dev-only.txt' in listdir(top2)
