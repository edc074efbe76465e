"""Reading: every file's bytes, random ranges, short reads at EOF,
concurrent readers, names with reserved URL bytes."""
import os
import random

import util
from util import read_bytes, pread, open_fd, close_fd

MODEL = ('model', 'acme/tiny')
LFS = 'model.safetensors'
ODD = 'dir with space/file #1?.txt'


def test_every_file_of_acme_tiny_matches_fixture(mount, hub):
    """All files at main (many/ included), listed lazily: each directory
    listed once (many/ in two pages), never recursively."""
    m = mount()
    top = m.path('acme', 'tiny')
    files = hub.files(*MODEL, 'main')
    got = util.walk_files(top)
    assert got == sorted(files), (
        'files under MNT/acme/tiny differ from the fixture: missing %r, '
        'extra %r' % (sorted(set(files) - set(got))[:10],
                      sorted(set(got) - set(files))[:10]))
    for p in sorted(files):
        util.check_content(read_bytes(os.path.join(top, p)), files[p],
                           'MNT/acme/tiny/' + p)
    tree = [r for r in hub.requests() if util.classify(r) == 'tree']
    rec = [r for r in tree if util.is_recursive(r)]
    assert not rec, 'recursive tree listings:\n' + util.fmt_rows(rec)
    firsts = {}
    for r in tree:
        if not util.query_dict(r).get('cursor'):
            d = util.tree_target(r)[1]
            firsts[d] = firsts.get(d, 0) + 1
    twice = {d: n for d, n in firsts.items() if n > 1}
    assert not twice, ('directories listed more than once: %r\n%s'
                       % (twice, util.fmt_rows(tree)))
    assert set(firsts) == hub.dirs(*MODEL, 'main'), (
        'listed %r, want every directory once' % sorted(firsts))


def test_name_with_space_hash_question_mark(mount, hub):
    m = mount()
    info = hub.files(*MODEL, 'main')[ODD]
    util.check_content(read_bytes(m.path('acme', 'tiny', *ODD.split('/'))),
                       info, ODD)


def test_lfs_file_whole(mount, hub):
    m = mount()
    info = hub.files(*MODEL, 'main')[LFS]
    assert info.get('sha256'), 'fixture %s is not an LFS file' % LFS
    util.check_content(read_bytes(m.path('acme', 'tiny', LFS)), info, LFS)


def test_random_ranges_of_lfs_file(mount, hub):
    expected = hub.download(*MODEL, 'main', LFS)
    size = len(expected)
    m = mount()
    fd = open_fd(m.path('acme', 'tiny', LFS))
    try:
        rnd = random.Random(20240611)
        for i in range(200):
            kind = rnd.random()
            if kind < 0.1:      # near the end, possibly across it
                off = rnd.randrange(max(0, size - 70000), size)
            elif kind < 0.2:    # near the start (header)
                off = rnd.randrange(0, 70000)
            else:
                off = rnd.randrange(0, size)
            length = rnd.choice([1, 7, 4096, 65536, 131072 + 3,
                                 rnd.randrange(1, 1 << 20)])
            got = pread(fd, length, off)
            want = expected[off:off + length]
            assert got == want, (
                'range %d: pread(%d bytes at %d) returned %d bytes, %s'
                % (i, length, off, len(got),
                   'content differs' if len(got) == len(want) else
                   'want %d' % len(want)))
    finally:
        close_fd(fd)


def test_reads_across_eof_are_short(mount, hub):
    m = mount()
    for rel in ('config.json', LFS):
        info = hub.files(*MODEL, 'main')[rel]
        size = info['size']
        whole = read_bytes(m.path('acme', 'tiny', rel))
        fd = open_fd(m.path('acme', 'tiny', rel))
        try:
            got = pread(fd, 100, size - 10)
            assert got == whole[size - 10:], (
                '%s: pread(100) 10 bytes before EOF returned %d bytes, want '
                'the last 10' % (rel, len(got)))
            assert pread(fd, 100, size) == b'', (
                '%s: pread at EOF must return 0 bytes' % rel)
            assert pread(fd, 100, size + 12345) == b'', (
                '%s: pread past EOF must return 0 bytes' % rel)
        finally:
            close_fd(fd)


def test_concurrent_readers(mount, hub):
    """Four threads read interleaved ranges of one open file."""
    import threading
    expected = hub.download(*MODEL, 'main', LFS)
    m = mount()
    fd = open_fd(m.path('acme', 'tiny', LFS))
    errors = []

    def reader(seed):
        rnd = random.Random(seed)
        try:
            for _ in range(25):
                off = rnd.randrange(0, len(expected))
                n = rnd.randrange(1, 300000)
                got = os.pread(fd, n, off)
                if got != expected[off:off + n]:
                    errors.append('seed %d: %d bytes at %d differ'
                                  % (seed, n, off))
        except OSError as e:
            errors.append('seed %d: %s' % (seed, e))

    try:
        threads = [threading.Thread(target=reader, args=(s,), daemon=True)
                   for s in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(util.FS_TIMEOUT)
        assert not any(t.is_alive() for t in threads), 'readers hang'
        assert not errors, '\n'.join(errors)
    finally:
        close_fd(fd)


def test_expired_signed_urls_are_re_resolved(mount, hub):
    """After every CDN signature expires (403), reads of uncached ranges
    still return the right bytes."""
    expected = hub.download(*MODEL, 'main', LFS)
    size = len(expected)
    m = mount()
    fd = open_fd(m.path('acme', 'tiny', LFS))
    try:
        assert pread(fd, 4096, 0) == expected[:4096]
        hub.expire()
        for off in (size - 5000, size // 2, size // 3):
            got = pread(fd, 4096, off)
            assert got == expected[off:off + 4096], (
                'pread at %d after the signed URLs expired' % off)
    finally:
        close_fd(fd)


def test_cdn_ignoring_range(mount, hub):
    """A CDN answering 200 + the whole body to a Range request."""
    expected = hub.download(*MODEL, 'main', LFS)
    hub.settings(cdn_ignore_range=True)
    m = mount()
    fd = open_fd(m.path('acme', 'tiny', LFS))
    try:
        rnd = random.Random(7)
        for _ in range(20):
            off = rnd.randrange(0, len(expected))
            n = rnd.randrange(1, 200000)
            assert pread(fd, n, off) == expected[off:off + n], (
                'pread(%d at %d) with a CDN ignoring Range' % (n, off))
    finally:
        close_fd(fd)
