"""The chunk and metadata cache (issue 3) and its faults (issue 5).

One range request per chunk for many concurrent readers; a corrupted or
truncated chunk file is detected, logged once, fetched again and never
served; kill -9 during a read leaves nothing that is served wrong; the disk
store stays within --cache-size (plus one chunk per active reader) while a
loop reads more than twice that; a remount of a seen commit needs no Hub
request; an expired CDN URL is resolved again. Cache faults: a read-only,
uncreatable or full cache directory (reads go on uncached, one warning, no
ENOSPC), damaged metadata files (dropped and fetched again). Several
processes on one directory: test_shared_cache.py.

Invariants cited are cache/cache.c's.
"""
import errno
import os
import random
import re
import threading
import time

import pytest

import util
from util import read_bytes, fmt_rows
import faults_util as fu
from faults_util import MODEL, LFS, CHUNK, CHUNK_HDR, CHUNK_FILE


def _lfs(hub):
    info = hub.files(*MODEL, 'main')[LFS]
    return info, hub.download(*MODEL, 'main', LFS)


def _nchunks(size):
    return (size + CHUNK - 1) // CHUNK


# --------------------------------------------------- one request a chunk ---

def test_concurrent_readers_one_request_per_chunk(mount, hub):
    """Invariant 1: 16 threads read (cold, at once) 16 different 256 KiB
    pieces of chunk 1 of model.safetensors (different pages, so the kernel
    cannot merge them: each is its own FUSE read, widened by the kernel's
    readahead so they overlap); with a CDN answering after 0.5 s, no byte
    is requested twice."""
    info, expected = _lfs(hub)
    m = mount()
    path = m.path('acme', 'tiny', LFS)
    util.stat(path)
    hub.reset()
    hub.settings(delay=0.5)
    n = 16
    piece = CHUNK // n
    barrier = threading.Barrier(n)

    def reader(i):
        fd = os.open(path, os.O_RDONLY)
        try:
            barrier.wait(10)
            off = CHUNK + i * piece
            return off, os.pread(fd, piece, off)
        finally:
            os.close(fd)

    workers = [fu.Worker(reader, i, name='reader %d' % i) for i in range(n)]
    for i, w in enumerate(workers):
        off, got = w.result(util.FS_TIMEOUT, 'reader %d' % i)
        assert got == expected[off:off + piece], (
            'reader %d: pread(%d at %d) returned wrong bytes' % (i, piece,
                                                                 off))
    rows = fu.settle(hub)   # readahead answers land 0.5 s late
    hub.settings(delay=0)
    ranges = fu.by_range(fu.cdn_rows(rows))
    twice = {r: s for r, s in ranges.items() if len(s) > 1}
    assert not twice, ('ranges requested more than once from the CDN: %r\n%s'
                       % (twice, fmt_rows(fu.cdn_rows(rows))))
    # invariant 1 is per block: no byte was asked for twice, and what was
    # asked for covers what was read
    spans = sorted(ranges)
    for a, b in zip(spans, spans[1:]):
        assert a[1] < b[0], ('CDN ranges %r and %r overlap: bytes fetched '
                             'twice\n%s' % (a, b, fmt_rows(fu.cdn_rows(rows))))
    for i in range(n):
        first, last = CHUNK + i * piece, CHUNK + (i + 1) * piece - 1
        assert any(a <= first and last <= b for a, b in fu.merge(spans)), (
            'piece %d (%d-%d) was never fetched' % (i, first, last))
    resolves = fu.rows_for(rows, LFS, 'resolve')
    assert len(resolves) == 1, ('one resolve expected for 16 readers:\n%s'
                                % fmt_rows(resolves))


# ------------------------------------------------------- chunk corruption ---

def _flip(path, offset):
    with open(path, 'r+b') as f:
        f.seek(offset)
        b = f.read(1)
        f.seek(offset)
        f.write(bytes([b[0] ^ 0x5a]))


def _corrupt(kind, files, key):
    """Damages chunk 2 of key (files: chunk_files())."""
    path = files[(key, 2)]
    if kind == 'flip-data':
        _flip(path, CHUNK_HDR + 123457)
    elif kind == 'flip-header':
        _flip(path, 16)                      # the length field
    elif kind == 'zeroed-data':
        with open(path, 'r+b') as f:
            f.seek(CHUNK_HDR + CHUNK // 2)
            f.write(b'\0' * (1 << 20))
    elif kind == 'truncated':
        os.truncate(path, CHUNK_HDR + CHUNK // 3)
    elif kind == 'truncated-header':
        os.truncate(path, 50)
    elif kind == 'empty':
        os.truncate(path, 0)
    elif kind == 'other-chunk':
        with open(files[(key, 1)], 'rb') as src:
            data = src.read()
        with open(path, 'wb') as dst:
            dst.write(data)
    else:
        raise AssertionError(kind)


CORRUPTIONS = ['flip-data', 'flip-header', 'zeroed-data', 'truncated',
               'truncated-header', 'empty', 'other-chunk']


@pytest.mark.parametrize('kind', CORRUPTIONS)
def test_corrupted_chunk_is_detected_and_refetched(mount, hub, kind):
    """Invariant 4: chunk file 2 of model.safetensors damaged between two
    mounts: the next read gives the right bytes, logs 'failed verification'
    once, fetches exactly that chunk again, and stores it again (a third
    mount reads it with no request)."""
    info, expected = _lfs(hub)
    key = info['sha256']
    m1 = mount()
    path1 = m1.path('acme', 'tiny', LFS)
    util.check_content(read_bytes(path1), info, LFS)
    assert m1.unmount() == 0
    files = fu.chunk_files(m1.cache_dir, key)
    assert sorted(i for _, i in files) == list(range(_nchunks(info['size']))), (
        'after a whole read, chunk files %r' % sorted(files))
    _corrupt(kind, files, key)

    hub.reset()
    m2 = mount(cache_dir=m1.cache_dir)
    util.check_content(read_bytes(m2.path('acme', 'tiny', LFS)), info,
                       '%s with chunk 2 %s' % (LFS, kind))
    lines = fu.log_lines(m2, 'failed verification')
    assert len(lines) == 1, ('want one "failed verification" line, got:\n%s'
                             % '\n'.join(lines) or '(none)')
    assert re.search(r"chunk 2 of '%s'" % key, lines[0]), lines[0]
    # blocks are checked one by one: the good blocks of chunk 2 may be
    # served from the file before the bad one is found; what is fetched
    # again lies in chunk 2, once, and the file is then whole again
    ranges = fu.by_range(fu.cdn_rows(hub.requests()))
    c2 = fu.chunk_range(2, info['size'])
    assert ranges and all(c2[0] <= a and b <= c2[1] and s == [206]
                          for (a, b), s in ranges.items()), (
        'want only chunk 2 fetched again, got %r\n%s'
        % (ranges, fmt_rows(hub.requests())))
    assert m2.unmount() == 0
    fixed = fu.chunk_files(m1.cache_dir, key)
    assert (key, 2) in fixed and os.path.getsize(fixed[(key, 2)]) == \
        CHUNK_FILE, 'chunk 2 was not stored again'

    hub.reset()
    m3 = mount(cache_dir=m1.cache_dir)
    assert read_bytes(m3.path('acme', 'tiny', LFS)) == expected
    assert not fu.log_lines(m3, 'failed verification'), (
        'the refetched chunk failed verification again')
    assert not fu.cdn_rows(hub.requests()), (
        'third mount fetched from the CDN:\n%s' % fmt_rows(hub.requests()))


def test_stray_files_in_chunk_dir_are_ignored(mount, hub):
    """A leftover temporary file (a crash before rename) and a garbage file
    with a chunk's name never reach a reader."""
    info, expected = _lfs(hub)
    key = info['sha256']
    m1 = mount()
    util.check_content(read_bytes(m1.path('acme', 'tiny', LFS)), info, LFS)
    assert m1.unmount() == 0
    files = fu.chunk_files(m1.cache_dir, key)
    sub = os.path.dirname(files[(key, 0)])
    tmp = os.path.join(sub, '%s.3.tmp.99999' % key)
    with open(tmp, 'wb') as f:
        f.write(b'\xff' * 1000)
    with open(files[(key, 3)], 'wb') as f:     # right name, no header
        f.write(os.urandom(CHUNK_FILE))
    hub.reset()
    m2 = mount(cache_dir=m1.cache_dir)
    assert not os.path.exists(tmp), 'temporary file left by a crash kept'
    assert read_bytes(m2.path('acme', 'tiny', LFS)) == expected
    assert len(fu.log_lines(m2, 'failed verification')) == 1


# ---------------------------------------------------- kill -9 mid-read ---

def test_kill9_during_large_read_then_remount(mount, hub):
    """kill -9 while model.safetensors is being read and stored (a slow CDN
    keeps fetches and writes in flight), three times, each new hfmount on
    the stale mountpoint (it cleans it: "stale mount" on stderr); the last
    one reads the right bytes from what the killed ones left."""
    info, expected = _lfs(hub)
    m = mount()
    path = m.path('acme', 'tiny', LFS)
    util.stat(path)
    mine = []
    rnd = random.Random(3)
    try:
        for i in range(3):
            hub.settings(delay=0.15)
            before = len(fu.chunk_files(m.cache_dir, info['sha256']))
            w = fu.Worker(fu.read_uncached, path, name='reader %d' % i)
            fu.wait_for(lambda: len(fu.chunk_files(m.cache_dir,
                                                   info['sha256'])) > before
                        or w.done(), 30, 'a chunk stored during read %d' % i)
            time.sleep(rnd.uniform(0, 0.2))
            fu.kill9(m)
            assert w.join(10), 'a read blocked after kill -9 of hfmount'
            assert 'error' in w.box or w.box['value'] == expected, (
                'a read cut by kill -9 returned wrong bytes')
            assert fu.statfs_errno(m.mnt) == errno.ENOTCONN, (
                'after kill -9, %s should be a stale mount' % m.mnt)
            hub.settings(delay=0)
            # Past the root's attribute timeout, so hfmount's stale-mount
            # check (a stat) sees ENOTCONN: the immediate restart is
            # test_process.py::test_kill9_then_new_hfmount_cleans_stale_mount.
            time.sleep(fu.ROOT_ATTR_S + 0.2)
            nxt = fu.same_mountpoint(m, 'killed%d' % i)
            mine.append(nxt)
            nxt.start()
            fu.wait_remounted(nxt)
            assert 'stale mount' in nxt.stderr_text(), (
                'hfmount did not say it cleaned the stale mount:\n%s'
                % nxt.stderr_text())
            assert not fu.temp_files(m.cache_dir), (
                'temporary chunk files a crash left were not removed: %r'
                % fu.temp_files(m.cache_dir))
            m = nxt
            path = m.path('acme', 'tiny', LFS)
        util.check_content(read_bytes(path), info, LFS + ' after 3 kill -9')
    finally:
        problems = []
        for x in reversed(mine):
            problems += x.cleanup()
    assert not problems, '\n'.join(problems)


# ------------------------------------------------------- --cache-size ---

BOUND_FILES = [
    ('model', 'acme/tiny', 'acme/tiny', LFS),
    ('dataset', 'acme/data', 'datasets/acme/data', 'data/train.parquet'),
    ('model', 'acme/tiny', 'acme/tiny', 'archive.tar'),
    ('model', 'acme/tiny', 'acme/tiny', 'tokenizer.json'),
    ('model', 'acme/tiny', 'acme/tiny', 'tiny.gguf'),
]


def test_cache_size_bound_holds_while_reading(mount, hub):
    """Invariant 5: --cache-size 12M, one reader reading ~17.9 MiB of
    distinct content three times (twice in one mount with the page cache
    dropped, once after a remount): the bytes under CACHE_DIR/chunks,
    sampled every 5 ms, never pass 12 MiB + one chunk file (one active
    reader), and end at most 12 MiB."""
    size = 12 * 1024 * 1024
    bound = size + 1 * CHUNK_FILE
    want = {}
    for type_, id_, _, rel in BOUND_FILES:
        want[(id_, rel)] = hub.files(type_, id_, 'main')[rel]
    total = sum(i['size'] for i in want.values())
    m = mount(args=('--cache-size', '12M'))
    chunks = os.path.join(m.cache_dir, 'chunks')
    read = 0
    with fu.DirSampler(chunks) as du:
        for rnd in range(3):
            if rnd == 2:
                assert m.unmount() == 0
                m = mount(cache_dir=m.cache_dir, args=('--cache-size', '12M'))
            for type_, id_, top, rel in BOUND_FILES:
                p = os.path.join(m.mnt, *top.split('/'), *rel.split('/'))
                data = util.bounded(fu.read_uncached, p, what='read ' + p)
                util.check_content(data, want[(id_, rel)],
                                   '%s (pass %d)' % (rel, rnd + 1))
                read += len(data)
    assert read > 2 * size, 'the loop read only %d bytes' % read
    assert read >= 3 * total - 1
    over = [s for s in du.samples if s > bound]
    assert not over, ('the chunk store reached %d bytes (bound %d = 12 MiB + '
                      'one chunk; %d of %d samples over)'
                      % (du.max, bound, len(over), len(du.samples)))
    assert du.max >= 2 * CHUNK_FILE, (
        'the chunk store never held two chunks (max %d): nothing was '
        'stored, so the bound proves nothing' % du.max)
    print('chunk store: max %d bytes over %d samples (bound %d), %d bytes '
          'read' % (du.max, len(du.samples), bound, read))
    assert m.unmount() == 0
    end = fu.dir_bytes(chunks)
    assert end <= size, 'the chunk store ends at %d bytes > 12 MiB' % end
    evicted = fu.chunk_files(m.cache_dir, want[('acme/tiny', LFS)]['sha256'])
    assert len(evicted) < _nchunks(want[('acme/tiny', LFS)]['size']), (
        'every chunk of %s is still stored: nothing was evicted' % LFS)


# ------------------------------------------------- remount: no request ---

def _read_all(top, files):
    for rel in sorted(files):
        util.check_content(read_bytes(os.path.join(top, *rel.split('/'))),
                           files[rel], rel)


@pytest.mark.parametrize('layout', ['whole-hub', 'single-repo'])
def test_remount_of_seen_commit_needs_no_request(mount, hub, layout):
    """A remount of acme/tiny@<sha> (MNT/acme/tiny@<sha>, or the spec
    acme/tiny@<sha>) with the same cache dir lists every directory and
    reads every file with no Hub request of any kind."""
    sha = hub.commit(*MODEL, 'main')
    files = hub.files(*MODEL, sha)

    def top(m):
        return m.mnt if layout == 'single-repo' else m.path('acme',
                                                             'tiny@' + sha)

    spec = 'acme/tiny@' + sha if layout == 'single-repo' else None
    m1 = mount(spec=spec)
    assert util.walk_files(top(m1)) == sorted(files)
    _read_all(top(m1), files)
    assert m1.unmount() == 0
    hub.reset()
    m2 = mount(spec=spec, cache_dir=m1.cache_dir)
    assert util.walk_files(top(m2)) == sorted(files)
    _read_all(top(m2), files)
    rows = hub.requests()
    assert not rows, ('the remount of a seen commit made %d Hub requests:\n%s'
                      % (len(rows), fmt_rows(rows[:30])))


def test_metadata_cache_ls_R_needs_no_tree_request(mount, hub):
    """ls -R of MNT/acme/tiny@<sha>, remount with the same cache dir, ls -R
    again: no tree (and no revision) request; the listing is the same."""
    sha = hub.commit(*MODEL, 'main')
    m1 = mount()
    first = util.walk_files(m1.path('acme', 'tiny@' + sha))
    assert first == sorted(hub.files(*MODEL, sha))
    assert m1.unmount() == 0
    hub.reset()
    m2 = mount(cache_dir=m1.cache_dir)
    r = util.run_cmd(['ls', '-R', m2.path('acme', 'tiny@' + sha)],
                     timeout=util.FS_TIMEOUT)
    assert r.returncode == 0, r.stderr
    assert 'f1499.txt' in r.stdout
    assert util.walk_files(m2.path('acme', 'tiny@' + sha)) == first
    rows = [r for r in hub.requests()
            if util.classify(r) in ('tree', 'revision', 'paths-info')]
    assert not rows, ('ls -R after a remount asked the Hub again:\n%s'
                      % fmt_rows(rows))


# ------------------------------------------------------ expired CDN URL ---

@pytest.mark.parametrize('how', ['expire', 'url_ttl'])
def test_expired_cdn_url_is_re_resolved(mount, hub, how):
    """Chunk 0 read, then every signed URL expires (POST /_fake/expire, or
    url_ttl=1 and a 2 s wait); a read of chunk 3 gets 403 from the CDN,
    resolves again (one resolve) and goes on with the right bytes."""
    info, expected = _lfs(hub)
    if how == 'url_ttl':
        hub.settings(url_ttl=1)
    m = mount()
    path = m.path('acme', 'tiny', LFS)
    fd = util.open_fd(path)
    try:
        assert util.pread(fd, 4096, 0) == expected[:4096]
        n0 = len(hub.requests())
        if how == 'expire':
            hub.expire()
        else:
            time.sleep(2.2)
        off = 3 * CHUNK + 777
        got = util.pread(fd, 65536, off)
        assert got == expected[off:off + 65536], 'chunk 3 after expiry'
    finally:
        util.close_fd(fd)
    after = hub.requests()[n0:]
    kinds = [(util.classify(r), r['status']) for r in after]
    assert kinds[:3] == [('cdn', 403), ('resolve', 302), ('cdn', 206)], (
        'want CDN 403, resolve 302, CDN 206; got:\n%s' % fmt_rows(after))
    # a read that starts no stream asks for its own blocks only
    first, last = fu.range_of(after[2])
    c3 = fu.chunk_range(3, info['size'])
    assert c3[0] <= first <= off and off + 65536 - 1 <= last <= c3[1], (
        first, last)
    assert len([k for k in kinds if k == ('cdn', 403)]) == 1, (
        'more than one 403: the new URL was not remembered\n%s'
        % fmt_rows(after))
    assert len(fu.log_lines(m, 'resolving again')) == 1


# ------------------------------------------------------ cache dir faults ---

@pytest.mark.parametrize('where', ['ro-dir', 'ro-missing-subdir'])
def test_read_only_cache_dir_reads_uncached(mount, hub, tmp_path, where):
    """--cache-dir on a read-only tmpfs (root ignores mode bits, so a ro
    mount it is), or a missing directory that cannot be created there:
    reads work from the network, with one warning; nothing is written."""
    info, expected = _lfs(hub)
    ro = str(tmp_path / 'ro')
    with fu.tmpfs(ro, '1m', ro=True):
        cache = ro if where == 'ro-dir' else os.path.join(ro, 'sub', 'cache')
        m = mount(cache_dir=cache)
        for _ in range(2):
            assert util.bounded(fu.read_uncached, m.path('acme', 'tiny', LFS),
                                what='read ' + LFS) == expected
        util.check_content(read_bytes(m.path('acme', 'tiny', 'config.json')),
                           hub.files(*MODEL, 'main')['config.json'],
                           'config.json')
        warn = fu.log_lines(m, 'cannot use cache directory')
        assert len(warn) == 1 and 'warn' in warn[0], (
            'want one warning about the cache dir, got %r' % warn)
        fu.assert_up(m)
        assert m.unmount() == 0
        assert os.listdir(ro) == []


def test_full_cache_dir_reads_go_on(mount, hub, tmp_path):
    """--cache-dir on a 6 MiB tmpfs, a 16 MiB file read twice (page cache
    dropped, then after a remount): no ENOSPC reaches the reader, one
    warning, no temporary file left behind."""
    info, expected = _lfs(hub)
    small = str(tmp_path / 'small')
    with fu.tmpfs(small, '6m'):
        m = mount(cache_dir=small)
        path = m.path('acme', 'tiny', LFS)
        for i in range(2):
            assert util.bounded(fu.read_uncached, path,
                                what='read %s #%d' % (LFS, i)) == expected
        warn = fu.log_lines(m, 'cannot store chunks')
        assert len(warn) == 1, 'want one warning, got %r' % warn
        assert 'No space left on device' in warn[0], warn[0]
        assert m.unmount() == 0
        assert not fu.temp_files(small), fu.temp_files(small)
        m2 = mount(cache_dir=small)
        assert util.bounded(fu.read_uncached, m2.path('acme', 'tiny', LFS),
                            what='read after remount') == expected
        assert m2.unmount() == 0
        assert not fu.temp_files(small), fu.temp_files(small)


def _damage_meta(kind, path):
    with open(path, 'rb') as f:
        data = f.read()
    if kind == 'truncated':
        data = data[:len(data) // 2]
    elif kind == 'empty':
        data = b''
    elif kind == 'garbage':
        data = bytes(random.Random(path).randrange(256)
                     for _ in range(len(data)))
    elif kind == 'flipped':
        i = len(data) - 10
        data = data[:i] + bytes([data[i] ^ 1]) + data[i + 1:]
    elif kind == 'appended':
        data = data + b'f\t5\t-\t-\textra.txt\n'
    with open(path, 'wb') as f:
        f.write(data)


@pytest.mark.parametrize('kind', ['truncated', 'empty', 'garbage', 'flipped',
                                  'appended'])
def test_damaged_metadata_is_dropped_and_refetched(mount, hub, kind):
    """Every file under CACHE_DIR/meta damaged between two mounts of
    acme/tiny@<sha>: the listings are right, the answers are fetched again
    (tree requests for every directory), a warning says so, and a third
    mount needs no request (they were stored again)."""
    sha = hub.commit(*MODEL, 'main')
    files = hub.files(*MODEL, sha)
    m1 = mount()
    assert util.walk_files(m1.path('acme', 'tiny@' + sha)) == sorted(files)
    assert m1.unmount() == 0
    metas = fu.meta_files(m1.cache_dir)
    assert len(metas) >= len(hub.dirs(*MODEL, sha)) + 1, metas
    for p in metas:
        _damage_meta(kind, p)
    hub.reset()
    m2 = mount(cache_dir=m1.cache_dir)
    assert util.walk_files(m2.path('acme', 'tiny@' + sha)) == sorted(files)
    trees = [r for r in hub.requests() if util.classify(r) == 'tree'
             and not util.query_dict(r).get('cursor')]
    assert sorted(util.tree_target(r)[1] for r in trees) == sorted(
        hub.dirs(*MODEL, sha)), 'want every listing fetched again:\n%s' % (
            fmt_rows(trees))
    assert fu.log_lines(m2, 'damaged metadata'), (
        'no warning about the damaged metadata')
    assert m2.unmount() == 0
    hub.reset()
    m3 = mount(cache_dir=m1.cache_dir)
    assert util.walk_files(m3.path('acme', 'tiny@' + sha)) == sorted(files)
    rows = [r for r in hub.requests()
            if util.classify(r) in ('tree', 'revision', 'paths-info')]
    assert not rows, 'metadata not stored again:\n%s' % fmt_rows(rows)
