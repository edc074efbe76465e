"""Concurrency (issue 5), rerun under ThreadSanitizer (marker
`concurrency`): 64 threads of random preads while eviction runs under a
tiny --cache-size; 8 processes faulting mmap'd pages of one file in random
order while readahead runs; a stalled CDN read never blocks reads of other
files, even with more stalled readers than FUSE worker threads; find over
100,000 entries keeps memory bounded and the kernel's forgets release the
inodes.
"""
import json
import os
import random
import subprocess
import sys
import time

import pytest

import util
from util import fmt_rows
import faults_util as fu
from faults_util import MODEL, LFS, CHUNK

pytestmark = pytest.mark.concurrency

RSS_BOUND_KIB = 300 * 1024  # x4 under a sanitizer: fu.rss_bound_kib

FILES = [
    ('model', 'acme/tiny', 'acme/tiny', LFS),
    ('dataset', 'acme/data', 'datasets/acme/data', 'data/train.parquet'),
    ('model', 'acme/tiny', 'acme/tiny', 'archive.tar'),
    ('model', 'acme/tiny', 'acme/tiny', 'tokenizer.json'),
    ('model', 'acme/tiny', 'acme/tiny', 'config.json'),
    ('model', 'acme/tiny', 'acme/tiny', 'tiny.gguf'),
    ('dataset', 'acme/data', 'datasets/acme/data', 'data/train.csv'),
]


def _stats(m):
    raw = util.getxattr(m.mnt, 'user.hf.stats')
    return json.loads(raw)


def test_64_threads_random_preads_under_eviction(mount, hub):
    """--cache-size 8M (two chunks), 64 threads x 40 random preads (page
    cache dropped first, so each reaches hfmount) over 7 files, twice: in a
    cold mount, and after a remount that finds a few chunks on disk. Every
    byte compared; evictions happen while the threads read."""
    expected = {}
    for type_, id_, top, rel in FILES:
        expected[(top, rel)] = hub.download(type_, id_, 'main', rel)
    keys = sorted(expected)
    m = None
    for rnd in range(2):
        m = mount(args=('--cache-size', '8M'),
                  cache_dir=m.cache_dir if m else None)

        def worker(seed, mnt=m.mnt):
            r = random.Random(seed)
            bad = []
            for _ in range(40):
                top, rel = r.choice(keys)
                data = expected[(top, rel)]
                off = r.randrange(0, len(data))
                n = r.choice([1, 4096, 65536, r.randrange(1, 1 << 20)])
                p = os.path.join(mnt, *top.split('/'), *rel.split('/'))
                got = fu.pread_path(p, n, off, drop=True)
                if got != data[off:off + n]:
                    bad.append('%s: pread(%d at %d) gave %d bytes%s'
                               % (rel, n, off, len(got),
                                  ', wrong' if len(got) == len(
                                      data[off:off + n]) else ''))
            return bad

        workers = [fu.Worker(worker, rnd * 1000 + i, name='reader %d' % i)
                   for i in range(64)]
        bad = []
        for i, w in enumerate(workers):
            bad += w.result(120, 'reader %d of round %d' % (i, rnd))
        assert not bad, '\n'.join(bad[:20])
        fu.assert_up(m)
        st = _stats(m)
        if rnd == 0:
            assert st['chunks_evicted'] > 0, (
                'nothing was evicted under --cache-size 8M: %r' % st)
        assert m.unmount() == 0


CHILD = r'''
import mmap, os, random, sys
path, ref, seed = sys.argv[1], sys.argv[2], int(sys.argv[3])
P = mmap.PAGESIZE
with open(ref, 'rb') as f:
    want = f.read()
fd = os.open(path, os.O_RDONLY)
mm = mmap.mmap(fd, 0, prot=mmap.PROT_READ)
assert len(mm) == len(want), (len(mm), len(want))
pages = list(range((len(want) + P - 1) // P))
random.Random(seed).shuffle(pages)
for p in pages:
    a = p * P
    if mm[a:a + P] != want[a:a + P]:
        print('page %d (offset %d) differs' % (p, a))
        sys.exit(1)
mm.close()
os.close(fd)
print('ok %d pages' % len(pages))
'''


def test_8_processes_mmap_random_pages(mount, hub, tmp_path):
    """8 processes mmap model.safetensors (cold) and fault every page in
    their own random order while readahead runs: no deadlock (all done
    within 120 s), every page right."""
    expected = hub.download(*MODEL, 'main', LFS)
    ref = tmp_path / 'ref.bin'
    ref.write_bytes(expected)
    m = mount()
    path = m.path('acme', 'tiny', LFS)
    util.stat(path)
    procs = [subprocess.Popen([sys.executable, '-c', CHILD, path, str(ref),
                               str(i)], stdin=subprocess.DEVNULL,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              start_new_session=True) for i in range(8)]
    out = []
    try:
        deadline = time.monotonic() + 120
        for p in procs:
            try:
                o, e = p.communicate(timeout=max(1, deadline -
                                                 time.monotonic()))
            except subprocess.TimeoutExpired:
                pytest.fail('an mmap reader did not finish within 120 s '
                            '(deadlock?)', pytrace=False)
            out.append((p.returncode, o.decode(), e.decode()))
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait(10)
    bad = [o for o in out if o[0] != 0]
    assert not bad, 'mmap readers failed: %r' % bad[:3]
    fu.assert_up(m)
    ranges = fu.by_range(fu.cdn_rows(hub.requests()))
    twice = {r: s for r, s in ranges.items() if len(s) > 1}
    assert not twice, 'chunks fetched more than once: %r' % twice


@pytest.mark.parametrize('stalled', [1, 16, 80])
def test_stalled_read_never_blocks_other_files(mount, hub, stalled):
    """Reads of model.safetensors stall on the CDN (headers, then nothing
    for 8 s, then the body; --timeout 20) in 1, 16 (more than the kernel's
    default 12 background requests) or 80 (more than the 64 FUSE worker
    threads) threads: reads of config.json (resolve-cache), of
    data/train.parquet (the same CDN host) and a listing all complete
    within 3 s. The stalled reads end with the right bytes."""
    m = mount(args=('--timeout', '20'))
    top = m.path('acme', 'tiny')
    lfs = os.path.join(top, LFS)
    util.stat(lfs)
    util.stat(os.path.join(top, 'config.json'))
    parquet = m.path('datasets', 'acme', 'data', 'data', 'train.parquet')
    util.stat(parquet)
    hub.reset()
    hub.fault(match=LFS, origin='cdn', action='stall', seconds=8,
              count=10000)
    expected = hub.download(*MODEL, 'main', LFS)
    size = hub.files(*MODEL, 'main')[LFS]['size']

    def stalled_read(i):
        off = min((i % 5) * CHUNK + (i // 5) * 65536, size - 4096)
        return off, fu.pread_path(lfs, 4096, off)

    others = (
        ('read config.json', fu.read_file, os.path.join(top, 'config.json'),
         lambda d: util.check_content(
             d, hub.files(*MODEL, 'main')['config.json'], 'config.json')),
        ('read train.parquet', fu.read_file, parquet,
         lambda d: util.check_content(
             d, hub.files('dataset', 'acme/data', 'main')[
                 'data/train.parquet'], 'train.parquet')),
        ('ls nested/a', os.listdir, os.path.join(top, 'nested', 'a'),
         lambda d: sorted(d) == hub.children(*MODEL, 'main', 'nested/a')))
    readers = [fu.Worker(stalled_read, i, name='stalled %d' % i)
               for i in range(stalled)]
    late = []
    try:
        fu.wait_for(lambda: fu.cdn_rows(hub.requests()), 10,
                    'a stalled CDN request')
        time.sleep(1.0)  # every stalled read is inside hfmount by now
        assert not any(r.done() for r in readers), (
            'a read of the stalled file returned early')
        for what, fn, arg, check in others:
            w = fu.Worker(fn, arg, name=what)
            if not w.join(3):
                late.append(w)
                pytest.fail('%s did not complete within 3 s while %d reads '
                            'of %s stall' % (what, stalled, LFS),
                            pytrace=False)
            check(w.result(1, what))
    finally:
        # the stalls end after 8 s (each new fetch stalls 8 s again); wait
        # for the readers so the unmount at teardown finds no open file
        for w in readers + late:
            w.join(120)
    for i, r in enumerate(readers):
        off, got = r.result(1, 'stalled read %d' % i)
        assert got == expected[off:off + 4096], (
            'stalled read %d (at %d): wrong bytes' % (i, off))
    fu.assert_up(m)


def test_stalled_chunk_never_blocks_other_chunks_of_the_file(mount, hub):
    """The first CDN request for model.safetensors stalls 8 s (the others
    do not): a read of chunk 3, started once that request is on the wire
    (the redirect to the CDN done, its URL known), completes within 3 s
    with the right bytes; it does not wait for the stalled transfer."""
    expected = hub.download(*MODEL, 'main', LFS)
    m = mount(args=('--timeout', '20'))
    path = m.path('acme', 'tiny', LFS)
    util.stat(path)
    hub.reset()
    hub.fault(match=LFS, origin='cdn', action='stall', seconds=8, count=1)
    first = fu.Worker(fu.pread_path, path, 4096, 0, name='chunk 0')
    other = None
    try:
        fu.wait_for(lambda: fu.cdn_rows(hub.requests()), 10,
                    'the stalled CDN request')
        off = 3 * CHUNK + 5
        other = fu.Worker(fu.pread_path, path, 4096, off, name='chunk 3')
        ok = other.join(3)
        assert ok, ('a read of chunk 3 waited %.1f s behind a stalled '
                    'transfer of another chunk of the same file:\n%s'
                    % (other.elapsed(), fmt_rows(hub.requests())))
        assert other.result(1) == expected[off:off + 4096]
    finally:
        for w in (first, other):
            if w:
                w.join(60)
    assert first.result(1, 'chunk 0 read') == expected[:4096]


def test_find_over_100000_entries_memory_bounded_and_forgotten(mount, hub):
    """many/ answered with 100,000 entries: `find -printf %s` stats every
    one (100,000 lookups); hfmount's peak RSS stays under 300 MiB; after
    the kernel drops its dentries (drop_caches), its forgets release the
    inodes (user.hf.stats "inodes" falls back under 1,000)."""
    sha = hub.commit(*MODEL, 'main')
    m = mount()
    util.stat(m.path('acme', 'tiny'))
    base = _stats(m)['inodes']
    hub.fault(match='tiny/tree/%s/many' % sha, origin='api',
              action='huge_dir', entries=100000)
    many = m.path('acme', 'tiny', 'many')
    r = fu.run_bounded(['find', many, '-type', 'f', '-printf', '%s\n'],
                       timeout=180)
    assert r.returncode == 0, r.stderr
    sizes = r.stdout.split()
    assert len(sizes) == 100000, 'find saw %d files' % len(sizes)
    assert sorted(int(s) for s in sizes) == sorted(16 + i % 64
                                                   for i in range(100000))
    r = fu.run_bounded(['ls', '-R', m.path('acme', 'tiny')], timeout=180)
    assert r.returncode == 0 and r.stdout.count(b'\n') > 100000
    hwm = fu.proc_status(m.proc.pid, 'VmHWM')
    # the most inodes held at once (others' drop_caches on this machine may
    # have made the kernel forget some while find ran)
    peak = _stats(m)['inodes_peak']
    bound = fu.rss_bound_kib(m.proc.pid, RSS_BOUND_KIB)
    assert hwm < bound, ('hfmount peak RSS %d KiB after find over 100,000 '
                         'entries (bound %d KiB)' % (hwm, bound))
    assert peak >= 20000, 'find looked up only %d inodes at once' % peak
    with open('/proc/sys/vm/drop_caches', 'w') as f:
        f.write('2\n')
    fu.wait_for(lambda: _stats(m)['inodes'] < base + 1000, 20,
                'inodes released after drop_caches (from %d)' % peak)
    print('find over 100,000 entries: VmHWM %d KiB, inodes %d -> %d'
          % (hwm, peak, _stats(m)['inodes']))
    fu.assert_up(m)
