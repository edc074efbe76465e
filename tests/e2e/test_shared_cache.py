"""One cache for every mount of a node (issue 11, item 6).

Several hfmount processes (different mountpoints, whole-Hub and single-repo)
on one --cache-dir: each chunk is fetched once for all of them (single
flight across processes through the per-chunk fetch lock), the size bound
holds for their sum, eviction by one never breaks another's reads, `hfmount
cache ls/clean` work while they are up, `hfmount status` shows each mount's
own figures and the shared store's, and kill -9 of one harms none of the
others. See cache/cache_share.h for the files they coordinate through.
"""
import json
import os
import threading
import time

import pytest

import util
import faults_util as fu
from faults_util import MODEL, LFS, CHUNK, CHUNK_FILE

pytestmark = pytest.mark.concurrency


def _status(hfmount, m, hub, tmp_path):
    home = tmp_path / 'hf_home'
    home.mkdir(exist_ok=True)
    r = util.run_cmd([hfmount, 'status', '--json', m.mnt],
                     env=util.clean_env(hub.api, str(home)))
    assert r.returncode == 0, 'hfmount status exited %d: %s' % (r.returncode,
                                                               r.stderr)
    return json.loads(r.stdout)


def _nchunks(size):
    return (size + CHUNK - 1) // CHUNK


def _lfs_path(m, single):
    return m.path(LFS) if single else m.path('acme', 'tiny', LFS)


def _read_all_at_once(paths):
    """Reads every path in its own thread, all started together; returns
    the bytes in order."""
    out = [None] * len(paths)
    errors = []
    start = threading.Barrier(len(paths))

    def one(i, p):
        try:
            start.wait(10)
            out[i] = fu.read_uncached(p)
        except BaseException as e:  # reported below
            errors.append((p, e))

    ts = [threading.Thread(target=one, args=(i, p), daemon=True)
          for i, p in enumerate(paths)]
    for t in ts:
        t.start()
    for t in ts:
        t.join(util.FS_TIMEOUT)
    assert not [t for t in ts if t.is_alive()], 'a reader hangs'
    assert not errors, errors
    return out


def test_mounts_on_one_cache_dir_fetch_each_chunk_once(mount, hub, hfmount,
                                                       tmp_path):
    """Three processes (two whole-Hub, one single-repo) on one cache dir read
    the 5-chunk model.safetensors at the same moment: right bytes in each,
    and the CDN served each byte once in all. Each status shows its own
    figures (the misses add up to the CDN's requests) and the shared
    store's (the same cache_bytes and cache_processes == 3 everywhere)."""
    info = hub.files(*MODEL, 'main')[LFS]
    n = _nchunks(info['size'])
    cache = str(tmp_path / 'shared-cache')
    a = mount(cache_dir=cache)
    b = mount('acme/tiny', cache_dir=cache)
    c = mount(cache_dir=cache)
    for m in (a, c):
        util.stat(m.path('acme', 'tiny'))
    hub.reset()
    datas = _read_all_at_once([_lfs_path(a, False), _lfs_path(b, True),
                               _lfs_path(c, False)])
    for d, who in zip(datas, 'abc'):
        util.check_content(d, info, '%s on mount %s' % (LFS, who))

    rows = fu.cdn_rows(fu.settle(hub))
    spans = [fu.range_of(r) for r in rows]
    moved = sum(b - a + 1 for a, b in spans)
    assert fu.merge(spans) == [(0, info['size'] - 1)] and \
        moved == info['size'], (
            'three mounts of one cache dir did not fetch each byte once:\n%s'
            % util.fmt_rows(rows))

    def full():
        ss = [_status(hfmount, m, hub, tmp_path) for m in (a, b, c)]
        return ss if all(s['cache_chunks'] >= n for s in ss) else None
    ss = fu.wait_for(full, 20, 'every chunk stored')
    # each range request was one mount's miss
    assert sum(s['chunk_misses'] for s in ss) == len(rows), ss
    assert len({s['cache_bytes'] for s in ss}) == 1, (
        'the mounts disagree on the shared store: %s' % ss)
    assert ss[0]['cache_bytes'] >= (n - 1) * CHUNK_FILE, ss
    assert all(s['cache_processes'] == 3 for s in ss), ss
    assert sum(s['chunks_stored'] for s in ss) >= n, ss
    # every mount that did not fetch a chunk got it from the one that did
    for s in ss:
        assert s['chunk_misses'] + s['chunk_hits_disk'] + \
            s['chunk_hits_memory'] >= n, s


def test_size_bound_holds_for_the_sum_of_processes(mount, hub, tmp_path):
    """Invariant 5 across processes: two mounts with --cache-size 12M on one
    dir read ~17.9 MiB of distinct content each, at the same time: the
    bytes under chunks/, sampled every 5 ms, never pass 12 MiB plus one
    chunk file per process writing, and end at most 12 MiB."""
    size = 12 * 1024 * 1024
    bound = size + 2 * CHUNK_FILE
    files = [('acme/tiny', LFS, ('acme', 'tiny', LFS)),
             ('acme/data', 'data/train.parquet',
              ('datasets', 'acme', 'data', 'data', 'train.parquet')),
             ('acme/tiny', 'archive.tar', ('acme', 'tiny', 'archive.tar')),
             ('acme/tiny', 'tiny.gguf', ('acme', 'tiny', 'tiny.gguf'))]
    want = {}
    for id_, rel, _ in files:
        type_ = 'dataset' if id_ == 'acme/data' else 'model'
        want[rel] = hub.files(type_, id_, 'main')[rel]
    cache = str(tmp_path / 'shared-cache')
    ms = [mount(cache_dir=cache, args=('--cache-size', '12M'))
          for _ in range(2)]
    chunks = os.path.join(cache, 'chunks')
    with fu.DirSampler(chunks) as du:
        for rnd in range(2):
            # the two mounts read the files in opposite orders
            order = [files, list(reversed(files))]
            paths = []
            for m, fl in zip(ms, order):
                paths.append([m.path(*p) for _, _, p in fl])

            def run(ps, fl, errors):
                try:
                    for p, (_, rel, _) in zip(ps, fl):
                        util.check_content(fu.read_uncached(p), want[rel], rel)
                except BaseException as e:
                    errors.append(e)
            errors = []
            ts = [threading.Thread(target=run, args=(ps, fl, errors),
                                   daemon=True)
                  for ps, fl in zip(paths, order)]
            for t in ts:
                t.start()
            for t in ts:
                t.join(util.FS_TIMEOUT * 2)
            assert not [t for t in ts if t.is_alive()], 'a reader hangs'
            assert not errors, errors
    over = [s for s in du.samples if s > bound]
    assert not over, ('the shared chunk store reached %d bytes (bound %d = '
                      '12 MiB + one chunk per process)' % (du.max, bound))
    assert du.max >= 2 * CHUNK_FILE, 'nothing was stored: %d' % du.max
    for m in ms:
        assert m.unmount() == 0
    end = fu.dir_bytes(chunks)
    assert end <= size, 'the shared store ends at %d bytes > 12 MiB' % end


def test_eviction_by_one_never_breaks_the_reads_of_another(mount, hub):
    """Mount a keeps re-reading model.safetensors in a loop while mount b,
    on the same dir with a store of 8 MiB, reads other files and evicts:
    every read of a returns the right bytes, none fails."""
    info = hub.files(*MODEL, 'main')[LFS]
    cache_dir = None
    a = mount(args=('--cache-size', '8M'))
    cache_dir = a.cache_dir
    b = mount(cache_dir=cache_dir, args=('--cache-size', '8M'))
    others = [(b.path('datasets', 'acme', 'data', 'data', 'train.parquet'),
               hub.files('dataset', 'acme/data', 'main')['data/train.parquet']),
              (b.path('acme', 'tiny', 'archive.tar'),
               hub.files(*MODEL, 'main')['archive.tar']),
              (b.path('acme', 'tiny', 'tiny.gguf'),
               hub.files(*MODEL, 'main')['tiny.gguf'])]
    stop = threading.Event()
    errors, reads = [], [0]

    def reader():
        try:
            while not stop.is_set():
                util.check_content(fu.read_uncached(_lfs_path(a, False)),
                                   info, LFS + ' on mount a')
                reads[0] += 1
        except BaseException as e:
            errors.append(e)
    t = threading.Thread(target=reader, daemon=True)
    t.start()
    try:
        for _ in range(3):
            for p, i in others:
                util.check_content(fu.read_uncached(p), i, p)
    finally:
        stop.set()
        t.join(util.FS_TIMEOUT)
    assert not t.is_alive(), 'the reader on mount a hangs'
    assert not errors, errors
    assert reads[0] >= 1
    fu.assert_up(a)
    fu.assert_up(b)


def test_kill9_of_one_process_harms_none_of_the_others(mount, hub, hfmount,
                                                       tmp_path):
    """Mount b dies by SIGKILL while it holds the fetch lock of a chunk (its
    range request stalls at the CDN): mount a then reads the same file at
    once (the lock died with b), right bytes; a third mount on the dir
    works; status counts the live processes only."""
    info = hub.files(*MODEL, 'main')[LFS]
    cache = str(tmp_path / 'shared-cache')
    a = mount(cache_dir=cache)
    b = mount(cache_dir=cache)
    util.stat(b.path('acme', 'tiny'))
    hub.fault(LFS, action='stall', origin='cdn', count=1, seconds=25)
    fd = util.open_fd(b.path('acme', 'tiny', LFS))
    w = fu.Worker(util.pread, fd, 4096, 0, name='stalled read on b')
    try:
        fu.wait_for(lambda: fu.cdn_rows(hub.requests()) or None, 10,
                    'the stalled CDN request of mount b')
        fu.wait_for(lambda: os.listdir(os.path.join(cache, 'locks')) or None,
                    10, 'a fetch lock held by mount b')
    finally:
        fu.kill9(b)  # also on failure: the stalled read must end
        w.join(util.FS_TIMEOUT)
        try:
            os.close(fd)
        except OSError:
            pass  # the mount is gone with its process
    t0 = time.monotonic()
    util.check_content(util.bounded(fu.read_uncached, _lfs_path(a, False)),
                       info, LFS + ' on mount a after kill -9 of b')
    took = time.monotonic() - t0
    assert took < 15, ('mount a waited %.1f s for a fetch lock of the dead '
                       'mount b' % took)
    c = mount(cache_dir=cache)
    util.check_content(util.read_bytes(_lfs_path(c, False)), info,
                       LFS + ' on a new mount c')
    s = _status(hfmount, a, hub, tmp_path)
    assert s['cache_processes'] == 2, (
        'status counts %d processes on the dir, 2 are alive: %s'
        % (s['cache_processes'], s))
    fu.assert_up(a)
