"""Hostile or broken Hub answers (issue 5): tree pages with entries a
client must reject, a 100,000-entry directory, malformed JSON, a file
served with another length than listed.

Bad entries are skipped with one warning per listing, good ones still
listed, nothing shows up outside its directory; a broken answer is EIO
with one log line, never a partial listing or wrong bytes; memory stays
bounded.
"""
import errno
import os

import pytest

import util
from util import read_bytes, fmt_rows
import faults_util as fu
from faults_util import MODEL, LFS

RSS_BOUND_KIB = 300 * 1024   # VmHWM of hfmount after 100,000 entries


def _tree_fault(hub, **kw):
    hub.fault(match='/tree/', origin='api', count=1000, **kw)


# -------------------------------------------------------------- hostile ---

@pytest.mark.parametrize('d', ['', 'nested/a', 'many'])
def test_hostile_entries_skipped_with_one_warning(mount, hub, d):
    """Every tree page gains '..', '.', '', 'a//b.txt', a NUL, a 300-byte
    name, a path outside the directory, a deeper path, a duplicate of the
    page's first entry (size + 1), a symlink, sizes -1 and 2^64+1, a
    non-string path, a lone surrogate, invalid UTF-8: the listing is the
    fixture's, one warning names the directory, the duplicated entry keeps
    its listed size and bytes."""
    m = mount()
    top = m.path('acme', 'tiny')
    util.stat(top)
    _tree_fault(hub, action='hostile')
    path = os.path.join(top, *d.split('/')) if d else top
    got = sorted(util.listdir(path))
    want = hub.children(*MODEL, 'main', d)
    assert got == want, 'ls %r: extra %r, missing %r' % (
        d, sorted(set(got) - set(want)), sorted(set(want) - set(got)))
    lines = fu.log_matches(m, r"skipped \d+ bad entries listing '%s' in "
                              r"'acme/tiny'" % (d or '/'))
    assert len(lines) == 1, ('want one warning for %r, got:\n%s\n--- log:\n%s'
                             % (d, '\n'.join(lines),
                                util.tail(m.log_text(), 20)))
    assert ' warning: ' in lines[0], lines[0]
    for bad in ('outside.txt', 'negative.txt', 'absurd.bin', 'link',
                'not-a-string', 'a', 'sub', 'x' * 300):
        e = fu.errno_of(os.lstat, os.path.join(path, bad),
                        what='lstat hostile %r' % bad[:20])[0]
        assert e in (errno.ENOENT, errno.ENAMETOOLONG), (
            'hostile entry %r: lstat gave %s' % (bad[:20], util.errname(e)))
    files = hub.files(*MODEL, 'main')
    first = [n for n in want if (d + '/' + n if d else n) in files]
    if first:
        rel = (d + '/' + first[0]) if d else first[0]
        st = util.stat(os.path.join(top, *rel.split('/')))
        assert st.st_size == files[rel]['size'], (
            '%s: size %d, listed %d (the duplicate won?)'
            % (rel, st.st_size, files[rel]['size']))
        util.check_content(read_bytes(os.path.join(top, *rel.split('/'))),
                           files[rel], rel)


def test_hostile_entries_nothing_outside_the_mount(mount, hub, tmp_path):
    """A walk of the whole repo under the hostile fault finds exactly the
    fixture's files; MNT/acme holds no 'outside.txt'; nothing named after
    an entry appears in the cache dir or next to the mountpoint."""
    m = mount()
    top = m.path('acme', 'tiny')
    util.stat(top)
    before = sorted(os.listdir(str(tmp_path)))
    _tree_fault(hub, action='hostile')
    assert util.walk_files(top) == sorted(hub.files(*MODEL, 'main'))
    assert fu.errno_of(os.lstat, m.path('acme', 'outside.txt'),
                       what='lstat MNT/acme/outside.txt')[0] == errno.ENOENT
    assert fu.errno_of(os.lstat, m.path('outside.txt'),
                       what='lstat MNT/outside.txt')[0] == errno.ENOENT
    # cache/cache_share.h names everything a store keeps beside its chunks
    assert sorted(os.listdir(m.cache_dir)) == ['chunks', 'evict.lock',
                                               'locks', 'meta', 'procs',
                                               'usage']
    assert sorted(os.listdir(str(tmp_path))) == before
    fu.assert_up(m)


# ------------------------------------------------------------- huge dir ---

def test_huge_dir_lists_completely_memory_bounded(mount, hub):
    """many/ answered with 100,000 synthetic entries over 100 pages: ls
    lists every one, in order, and hfmount's peak RSS (VmHWM) stays under
    300 MiB."""
    sha = hub.commit(*MODEL, 'main')
    m = mount()
    util.stat(m.path('acme', 'tiny'))
    hub.fault(match='tiny/tree/%s/many' % sha, origin='api',
              action='huge_dir', entries=100000)
    got = util.listdir(m.path('acme', 'tiny', 'many'), timeout=120)
    want = ['f%07d.txt' % i for i in range(100000)]
    assert len(got) == len(want) and sorted(got) == want, (
        'listed %d entries, want 100000' % len(got))
    st = util.stat(m.path('acme', 'tiny', 'many', 'f0099999.txt'))
    assert st.st_size == 16 + 99999 % 64
    pages = [r for r in hub.requests() if util.classify(r) == 'tree'
             and util.tree_target(r)[1] == 'many']
    assert len(pages) == 100, '%d tree pages:\n%s' % (len(pages),
                                                     fmt_rows(pages[:5]))
    hwm = fu.proc_status(m.proc.pid, 'VmHWM')
    bound = fu.rss_bound_kib(m.proc.pid, RSS_BOUND_KIB)
    assert hwm is not None and hwm < bound, (
        'hfmount peak RSS %s KiB after listing 100,000 entries (bound %d)'
        % (hwm, bound))
    print('hfmount VmHWM after 100,000 entries: %d KiB' % hwm)


# ------------------------------------------------------------- bad JSON ---

BROKEN = {
    # name: (fault kwargs, operation)
    'tree-bad-json': (dict(match='/tree/', action='bad_json'), 'ls nested'),
    'tree-page2-bad-json': (dict(match='cursor=', action='bad_json'),
                            'ls many'),
    'tree-truncated': (dict(match='/tree/', action='truncate'), 'ls nested'),
    'revision-bad-json': (dict(match='/api/models/acme/tiny',
                               action='bad_json'), 'stat repo'),
}


@pytest.mark.parametrize('name', sorted(BROKEN))
def test_broken_json_gives_eio_with_one_log_line(mount, hub, name):
    """Malformed or truncated JSON (on the first page, or on page 2 of
    many/): EIO, never a partial listing; one error line; the mount stays
    up and lists right once the Hub answers well."""
    fault, op = BROKEN[name]
    m = mount(args=('--retries', '2'))
    if op != 'stat repo':
        util.stat(m.path('acme', 'tiny'))
    hub.fault(origin='api', count=1000, **fault)
    if op == 'stat repo':
        fn, path = os.stat, m.path('acme', 'tiny')
    else:
        fn, path = os.listdir, m.path('acme', 'tiny', op.split()[1])
    e, took = fu.errno_of(fn, path, what=op, timeout=util.EIO_BOUND)
    assert e == errno.EIO, '%s under %s: want EIO, got %s' % (
        op, name, util.errname(e))
    assert took < fu.FAIL_BOUND
    lines = fu.level_lines(m, 'error')
    assert len(lines) == 1, 'want one error line, got:\n%s' % '\n'.join(lines)
    fu.assert_up(m)
    hub.reset()
    if op == 'stat repo':
        util.stat(path)
    else:
        d = op.split()[1]
        assert sorted(util.listdir(path)) == hub.children(*MODEL, 'main', d)


# ----------------------------------------------------------- wrong size ---

WRONG_SIZE = {
    'lfs-cdn': (LFS, 'cdn'),
    'regular-resolve-cache': ('config.json', 'api'),
    'small-lfs-cdn': ('tiny.gguf', 'cdn'),
}


@pytest.mark.parametrize('name', sorted(WRONG_SIZE))
def test_wrong_size_is_eio_never_wrong_bytes(mount, hub, name):
    """Every answer one byte shorter than the listed size (consistent
    Content-Length and Content-Range): reading the whole file is EIO with a
    log line naming the size mismatch, never bytes; right after reset."""
    rel, origin = WRONG_SIZE[name]
    m = mount(args=('--retries', '2'))
    path = m.path('acme', 'tiny', rel)
    util.stat(path)
    hub.fault(match=rel if origin == 'cdn' else '/api/resolve-cache/',
              origin=origin, action='wrong_size', count=1000)
    e, took = fu.errno_of(fu.read_file, path, what='read ' + rel,
                          timeout=util.EIO_BOUND)
    assert e == errno.EIO, 'read %s served short: want EIO, got %s' % (
        rel, util.errname(e))
    assert took < fu.FAIL_BOUND
    # A short last byte shows as a size mismatch, or (a whole small file)
    # as a Content-Range that ends before the range asked for.
    assert fu.log_matches(m, 'differs from the listed size|does not match '
                             'the range'), (
        'no log line names the size mismatch:\n%s' % util.tail(m.log_text()))
    errs = [l for l in fu.level_lines(m, 'error') if rel in l]
    assert len(errs) == 1, '\n'.join(errs)
    hub.reset()
    util.check_content(read_bytes(path), hub.files(*MODEL, 'main')[rel], rel)
