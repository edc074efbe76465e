"""Partly fetched chunks (issue 10): a chunk file holds any subset of its
64 KiB blocks, each with its own XXH3 in the header.

A torn block (written, then a crash before the header listed it; or a
listed block cut short) is never served; a block that fails verification
is fetched again while the good blocks of its file were served; eviction
counts and removes partial chunk files within --cache-size; a reader that
switches between random and sequential reads gets small requests for the
random ones and growing ones for the stream.

Reads here use posix_fadvise(RANDOM) so that the kernel asks hfmount for
exactly the pages read (no readahead of its own), and offsets more than
CACHE_SEQ_SLACK (8 MiB) apart so that hfmount sees no stream.
"""
import json
import os
import re

import util
from util import fmt_rows
import faults_util as fu
from faults_util import MODEL, LFS, CHUNK, CHUNK_HDR

BLOCK = 64 * 1024


def _lfs(hub):
    return hub.files(*MODEL, 'main')[LFS], hub.download(*MODEL, 'main', LFS)


def _pread(path, off, n=4096, drop=False):
    """One pread, with no kernel readahead; drop: of a page the kernel
    holds no more."""
    fd = os.open(path, os.O_RDONLY)
    try:
        if drop:
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_RANDOM)
        return os.pread(fd, n, off)
    finally:
        os.close(fd)


def _at(chunk, block, inner=100):
    """File offset inside block of chunk."""
    return chunk * CHUNK + block * BLOCK + inner


def _block_range(chunk, block, size):
    first = chunk * CHUNK + block * BLOCK
    return first, min(size, first + BLOCK) - 1


def _cdn_spans(hub):
    return [fu.range_of(r) for r in fu.cdn_rows(fu.settle(hub, quiet=0.5))]


def _partial_chunk(mount, hub, blocks, chunk=2):
    """A mount reads one page in each of blocks of chunk of model.safetensors,
    then unmounts: the chunk file holds just those blocks. Returns (info,
    expected bytes, cache dir, the chunk file's path)."""
    info, expected = _lfs(hub)
    m = mount()
    path = m.path('acme', 'tiny', LFS)
    util.stat(path)
    hub.reset()
    for b in blocks:
        off = _at(chunk, b)
        assert _pread(path, off) == expected[off:off + 4096]
    spans = _cdn_spans(hub)
    want = [_block_range(chunk, b, info['size']) for b in blocks]
    assert sorted(spans) == want, (
        'a page read of each of blocks %r fetched %r, not those blocks:\n%s'
        % (blocks, spans, fmt_rows(hub.requests())))
    assert m.unmount() == 0
    files = fu.chunk_files(m.cache_dir, info['sha256'])
    assert list(files) == [(info['sha256'], chunk)], files
    f = files[(info['sha256'], chunk)]
    # sparse: the header and the blocks read, not the whole chunk
    assert fu.dir_bytes(os.path.dirname(f)) <= CHUNK_HDR + len(blocks) * BLOCK
    return info, expected, m.cache_dir, f


def test_torn_unlisted_block_is_never_served(mount, hub):
    """Blocks are written before the header that lists them: a crash between
    leaves bytes at a block's place that the header does not list. They are
    never read: that block is fetched (just it), the listed ones are served
    from disk, nothing fails verification, and the fetched block is stored
    (a third mount reads all three with no request)."""
    info, expected, cache, f = _partial_chunk(mount, hub, [1, 3])
    with open(f, 'r+b') as fh:  # half of block 5, garbage, not listed
        fh.seek(CHUNK_HDR + 5 * BLOCK)
        fh.write(b'\xa5' * (BLOCK // 2))

    hub.reset()
    m = mount(cache_dir=cache)
    path = m.path('acme', 'tiny', LFS)
    for b in (1, 3):
        off = _at(2, b)
        assert _pread(path, off) == expected[off:off + 4096]
    assert not _cdn_spans(hub), 'listed blocks were fetched again'
    off = _at(2, 5)
    assert _pread(path, off) == expected[off:off + 4096], 'torn block served'
    assert _cdn_spans(hub) == [_block_range(2, 5, info['size'])], \
        fmt_rows(hub.requests())
    assert not fu.log_lines(m, 'failed verification'), m.log_text()
    assert m.unmount() == 0

    hub.reset()
    m = mount(cache_dir=cache)
    path = m.path('acme', 'tiny', LFS)
    for b in (1, 3, 5):
        off = _at(2, b, inner=0)
        assert _pread(path, off, BLOCK) == expected[off:off + BLOCK]
    assert not fu.cdn_rows(hub.requests()), fmt_rows(hub.requests())


def test_torn_listed_block_fails_verification(mount, hub):
    """A chunk file cut short inside the last block its header lists (a
    torn file): a read of that block gives the right bytes, logs 'failed
    verification' once and fetches again only within that chunk."""
    info, expected, cache, f = _partial_chunk(mount, hub, [1, 3])
    os.truncate(f, CHUNK_HDR + 3 * BLOCK + BLOCK // 3)

    hub.reset()
    m = mount(cache_dir=cache)
    path = m.path('acme', 'tiny', LFS)
    off = _at(2, 3)
    assert _pread(path, off) == expected[off:off + 4096]
    lines = fu.log_lines(m, 'failed verification')
    assert len(lines) == 1 and "chunk 2 of '%s'" % info['sha256'] in lines[0], \
        lines
    c2 = fu.chunk_range(2, info['size'])
    spans = _cdn_spans(hub)
    assert spans and all(c2[0] <= a and b <= c2[1] for a, b in spans), spans
    off = _at(2, 1)
    assert _pread(path, off) == expected[off:off + 4096]


def test_block_failing_verification_spares_the_good_blocks(mount, hub):
    """One flipped byte in block 3 of a chunk file holding blocks 1 and 3: a
    read of block 1 is served from disk (only the blocks a read touches are
    checked), with no request and no warning; a read of block 3 gives the
    right bytes, logs 'failed verification' once and fetches only block 3's
    chunk again; the file is whole again for the next mount."""
    info, expected, cache, f = _partial_chunk(mount, hub, [1, 3])
    with open(f, 'r+b') as fh:
        fh.seek(CHUNK_HDR + 3 * BLOCK + 777)
        b = fh.read(1)
        fh.seek(CHUNK_HDR + 3 * BLOCK + 777)
        fh.write(bytes([b[0] ^ 0x40]))

    hub.reset()
    m = mount(cache_dir=cache)
    path = m.path('acme', 'tiny', LFS)
    off = _at(2, 1)
    assert _pread(path, off) == expected[off:off + 4096]
    assert not fu.cdn_rows(hub.requests()), fmt_rows(hub.requests())
    assert not fu.log_lines(m, 'failed verification')

    off = _at(2, 3)
    assert _pread(path, off) == expected[off:off + 4096], 'bad block served'
    lines = fu.log_lines(m, 'failed verification')
    assert len(lines) == 1 and re.search(r"chunk 2 of '%s'" % info['sha256'],
                                         lines[0]), lines
    c2 = fu.chunk_range(2, info['size'])
    spans = _cdn_spans(hub)
    assert spans and all(c2[0] <= a and b <= c2[1] for a, b in spans), spans
    assert any(a <= off <= b for a, b in spans), spans
    assert m.unmount() == 0

    hub.reset()
    m = mount(cache_dir=cache)
    off = _at(2, 3)
    assert _pread(m.path('acme', 'tiny', LFS), off) == \
        expected[off:off + 4096]
    assert not fu.cdn_rows(hub.requests()), fmt_rows(hub.requests())
    assert not fu.log_lines(m, 'failed verification')


def test_eviction_of_partial_chunks_keeps_the_bound(mount, hub):
    """--cache-size 1M and page reads in 40 distinct blocks spread over
    model.safetensors (2.5 MiB of blocks, each its chunk file's part): the
    bytes under chunks/ (sparse files counted as du does), sampled every
    5 ms, never pass 1 MiB + one chunk file, partial chunk files are
    evicted, and a second pass (a new mount, back from the last page)
    gives the right bytes from what is still stored and from fetching
    again what was evicted."""
    info, expected = _lfs(hub)
    bound = 1024 * 1024 + fu.CHUNK_FILE
    offs = []
    for i in range(40):
        c, b = i % 4, (i * 7) % 64
        offs.append(_at(c, b))
    m = mount(args=('--cache-size', '1M'))
    cache = m.cache_dir
    chunks = os.path.join(cache, 'chunks')
    util.stat(m.path('acme', 'tiny', LFS))
    hub.reset()
    with fu.DirSampler(chunks) as du:
        for rnd in range(2):
            if rnd == 1:  # memory holds chunks too: a new process
                st = json.loads(util.getxattr(m.mnt, 'user.hf.stats'))
                assert st['chunks_evicted'] > 0, st
                assert m.unmount() == 0
                m = mount(cache_dir=cache, args=('--cache-size', '1M'))
            path = m.path('acme', 'tiny', LFS)
            # the second pass goes back: the last stored first
            for off in (offs if rnd == 0 else offs[::-1]):
                assert _pread(path, off) == expected[off:off + 4096], (
                    'pass %d at %d' % (rnd + 1, off))
    over = [s for s in du.samples if s > bound]
    assert not over, ('the chunk store reached %d bytes (bound %d)'
                      % (du.max, bound))
    assert du.max >= 512 * 1024, (
        'the store never held 512 KiB (max %d): the bound proves nothing'
        % du.max)
    spans = _cdn_spans(hub)
    # each page read asked for its block only
    assert all(b - a + 1 <= BLOCK for a, b in spans), spans
    # the second pass found blocks evicted and fetched them again, and
    # others still stored
    assert len(offs) < len(spans) < 2 * len(offs), (
        '%d requests for two passes over %d blocks' % (len(spans), len(offs)))
    assert m.unmount() == 0
    assert fu.dir_bytes(chunks) <= 1024 * 1024


def test_reader_switching_between_random_and_sequential(mount, hub):
    """One open file: page reads far apart ask for their block only; a
    sequential stream of 128 KiB reads over 2 MiB asks for growing ranges
    (fewer requests than blocks, the largest at least 512 KiB) and moves
    no byte twice; a jump away from the stream is a small request again,
    and so is the next far read. Every byte is right."""
    info, expected = _lfs(hub)
    m = mount()
    path = m.path('acme', 'tiny', LFS)
    util.stat(path)
    hub.reset()
    fd = os.open(path, os.O_RDONLY)
    try:
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_RANDOM)

        def small(off):
            before = len(_cdn_spans(hub))
            assert os.pread(fd, 4096, off) == expected[off:off + 4096], off
            new = _cdn_spans(hub)[before:]
            assert len(new) == 1 and new[0][1] - new[0][0] + 1 <= BLOCK, (
                'a page read at %d asked for %r' % (off, new))

        small(12 * 1024 * 1024 + 5000)
        small(2 * 1024 * 1024 + 5000)
        before = len(_cdn_spans(hub))
        start, end = 4 * 1024 * 1024, 6 * 1024 * 1024
        for off in range(start, end, 128 * 1024):
            assert os.pread(fd, 128 * 1024, off) == \
                expected[off:off + 128 * 1024], off
        seq = _cdn_spans(hub)[before:]
        assert seq and len(seq) < (end - start) // BLOCK, (
            'the stream did not grow its requests: %r' % seq)
        assert max(b - a + 1 for a, b in seq) >= 512 * 1024, seq
        assert fu.merge(seq)[0][0] == start and \
            sum(b - a + 1 for a, b in seq) == \
            sum(b - a + 1 for a, b in fu.merge(seq)), seq
        small(15 * 1024 * 1024 + 5000)
        small(1024 * 1024 + 5000)
    finally:
        os.close(fd)
    fu.assert_up(m)
