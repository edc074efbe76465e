"""Layout: whole-Hub mode (MNT/NS/NAME, MNT/datasets/..., MNT/spaces/...),
single-repo mode, listings against the fixture, stat attributes, ENOENT."""
import os
import stat as st

import pytest

import util
from util import listdir, stat, read_bytes, tree_target


def test_root_lists_datasets_spaces_then_looked_up_namespaces(mount):
    m = mount()
    before = sorted(listdir(m.mnt))
    assert before == ['datasets', 'spaces'], (
        'ls MNT before any lookup: %r, want datasets and spaces only' % before)
    assert st.S_ISDIR(stat(m.path('acme', 'tiny')).st_mode)
    with pytest.raises(FileNotFoundError):
        stat(m.path('no-such-namespace-e2e'))
    after = sorted(listdir(m.mnt))
    assert after == ['acme', 'datasets', 'spaces'], (
        'ls MNT after looking up acme/tiny and a missing namespace: %r, want '
        'acme, datasets, spaces' % after)


def test_repo_root_listing_matches_fixture(mount, hub):
    m = mount()
    got = sorted(listdir(m.path('acme', 'tiny')))
    want = hub.children('model', 'acme/tiny', 'main')
    assert got == want, 'ls MNT/acme/tiny: %r, fixture root: %r' % (got, want)


def test_nested_listings_match_fixture(mount, hub):
    m = mount()
    for d in ('nested', 'nested/a', 'nested/a/b', 'dir with space'):
        got = sorted(listdir(m.path('acme', 'tiny', d)))
        want = hub.children('model', 'acme/tiny', 'main', d)
        assert got == want, 'ls %s: %r, fixture: %r' % (d, got, want)


def test_many_listing_complete_in_two_pages(mount, hub):
    m = mount()
    got = sorted(listdir(m.path('acme', 'tiny', 'many')))
    want = hub.children('model', 'acme/tiny', 'main', 'many')
    assert len(want) == 1500, 'fixture many/ has %d files' % len(want)
    missing = sorted(set(want) - set(got))
    extra = sorted(set(got) - set(want))
    assert got == want, ('ls many/: %d names, %d missing (first %r), %d extra '
                         '(first %r)' % (len(got), len(missing), missing[:5],
                                         len(extra), extra[:5]))
    rows = [r for r in hub.requests() if util.classify(r) == 'tree']
    many = [r for r in rows if tree_target(r)[1] == 'many']
    assert len(many) == 2, ('listing many/ (1500 entries, pages of 1000) '
                            'took %d tree requests, want exactly 2:\n%s'
                            % (len(many), util.fmt_rows(many)))
    assert not util.query_dict(many[0]).get('cursor') and \
        util.query_dict(many[1]).get('cursor'), (
        'want a first page, then the Link next page (with cursor):\n%s'
        % util.fmt_rows(many))


def _check_stat(path, want_dir, size, mtime, what):
    s = stat(path)
    if want_dir:
        assert s.st_mode == st.S_IFDIR | 0o555, (
            '%s: mode %o, want directory 0555' % (what, s.st_mode))
    else:
        assert s.st_mode == st.S_IFREG | 0o444, (
            '%s: mode %o, want regular file 0444' % (what, s.st_mode))
        assert s.st_size == size, ('%s: st_size %d, fixture size %d'
                                   % (what, s.st_size, size))
    assert (s.st_uid, s.st_gid) == (os.getuid(), os.getgid()), (
        '%s: owner %d:%d, want the mounting user %d:%d'
        % (what, s.st_uid, s.st_gid, os.getuid(), os.getgid()))
    assert int(s.st_mtime) == mtime, (
        '%s: mtime %d, want the commit date %d' % (what, s.st_mtime, mtime))


@pytest.mark.parametrize('type,repo_id,prefix', [
    ('model', 'acme/tiny', ''),
    ('dataset', 'acme/data', 'datasets'),
    ('space', 'acme/demo', 'spaces'),
])
def test_stat_matches_fixture(mount, hub, type, repo_id, prefix):
    """Sizes (LFS size for LFS files), modes, owner and mtime of every file
    and directory."""
    m = mount()
    top = m.path(prefix, *repo_id.split('/'))
    mtime = hub.date(type, repo_id, 'main')
    for d in sorted(hub.dirs(type, repo_id, 'main')):
        _check_stat(os.path.join(top, d), True, 0, mtime, '%s/%s' % (
            repo_id, d))
    for p, info in sorted(hub.files(type, repo_id, 'main').items()):
        _check_stat(os.path.join(top, p), False, info['size'], mtime,
                    '%s/%s' % (repo_id, p))


@pytest.mark.parametrize('type,repo_id,prefix', [
    ('dataset', 'acme/data', 'datasets'),
    ('space', 'acme/demo', 'spaces'),
])
def test_dataset_and_space_content(mount, hub, type, repo_id, prefix):
    m = mount()
    top = m.path(prefix, *repo_id.split('/'))
    want = sorted(hub.files(type, repo_id, 'main'))
    got = util.walk_files(top)
    assert got == want, '%s files %r, fixture %r' % (repo_id, got, want)
    for p, info in hub.files(type, repo_id, 'main').items():
        util.check_content(read_bytes(os.path.join(top, p)), info,
                           '%s/%s' % (repo_id, p))


@pytest.mark.parametrize('rel', [
    'no-such-namespace-e2e',
    'no-such-namespace-e2e/tiny',
    'acme/no-such-repo',
    'acme/tiny/no-such-file.txt',
    'acme/tiny/nested/no-such-dir',
    'acme/tiny/nested/a/b/no-such-file',
    'datasets/acme/no-such-repo',
    'datasets/no-such-namespace-e2e',
    'spaces/acme/no-such-repo',
    'datasets/acme/data/data/no-such.csv',
])
@pytest.mark.parametrize('token', [None, util.TOKENS['alice']],
                         ids=['anonymous', 'token'])
def test_missing_name_is_enoent(mount, rel, token):
    """Anonymous: the Hub answers a missing repo with 401 and no error code
    (missing or private); with a token, 404 RepoNotFound. Both are a name
    the Hub says does not exist."""
    m = mount(token=token)
    util.expect_errno(2, os.stat, m.path(*rel.split('/')),
                      what='stat MNT/' + rel)


@pytest.mark.parametrize('spec,type,repo_id,rev', [
    ('acme/tiny', 'model', 'acme/tiny', 'main'),
    ('datasets/acme/data', 'dataset', 'acme/data', 'main'),
    ('spaces/acme/demo', 'space', 'acme/demo', 'main'),
    ('acme/tiny@dev', 'model', 'acme/tiny', 'dev'),
])
def test_single_repo_mode(mount, hub, spec, type, repo_id, rev):
    m = mount(spec)
    got = sorted(listdir(m.mnt))
    want = hub.children(type, repo_id, rev)
    assert got == want, 'hfmount %s MNT; ls MNT: %r, fixture root %r' % (
        spec, got, want)
    files = hub.files(type, repo_id, rev)
    for p in sorted(files):
        if p.startswith('many/'):
            continue  # test_read covers them
        util.check_content(read_bytes(m.path(p)), files[p],
                           '%s: %s' % (spec, p))
    commit = hub.commit(type, repo_id, rev)
    got = util.getxattr(m.mnt, 'user.hf.commit').decode()
    assert got == commit, ('hfmount %s: user.hf.commit on MNT is %r, want %s'
                           % (spec, got, commit))
    assert int(stat(m.mnt).st_mtime) == hub.date(type, repo_id, rev)
