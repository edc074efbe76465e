"""Process life (issue 5): SIGTERM unmounts cleanly, also with a read
stalled on the network; after kill -9 the next hfmount on the same
mountpoint detects the stale mount ("Transport endpoint is not
connected"), cleans it, says so, and works; a lazy unmount with reads in
flight ends the process within a few seconds.
"""
import errno
import signal
import time

import pytest

import util
from util import read_bytes
import faults_util as fu
from faults_util import MODEL, LFS, CHUNK


def _config(hub):
    return hub.files(*MODEL, 'main')['config.json']


def _stalled_reader(m, hub, where='cdn'):
    """A thread reading chunk 2 of model.safetensors, stalled 60 s (longer
    than any bound below; the default --timeout of 30 s does not end it
    first) on the CDN, or on the Hub's resolve answer (a 302 whose body
    never comes: the file's CDN URL stays unknown, so reads of its other
    chunks wait on this one). Returns once the request is on the wire."""
    path = m.path('acme', 'tiny', LFS)
    util.stat(path)
    if where == 'cdn':
        hub.fault(match=LFS, origin='cdn', action='stall', seconds=60,
                  count=10000)
    else:
        hub.fault(match='/resolve/', origin='api', action='stall',
                  seconds=60, count=10000)
    w = fu.Worker(fu.pread_path, path, 4096, 2 * CHUNK + 5,
                  name='stalled reader')
    kind = 'cdn' if where == 'cdn' else 'resolve'
    fu.wait_for(lambda: fu.rows_for(hub.requests(), LFS, kind), 10,
                'the stalled %s request' % kind)
    time.sleep(0.3)
    assert not w.done(), 'the read returned while the %s stalls: %r' % (
        kind, w.box)
    return w


def test_sigterm_unmounts_cleanly(mount, hub):
    m = mount()
    util.check_content(read_bytes(m.path('acme', 'tiny', 'config.json')),
                       _config(hub), 'config.json')
    m.signal(signal.SIGTERM)
    assert m.wait_exit(fu.PROMPT) == 0, 'hfmount did not exit 0 on SIGTERM'
    assert not m.mounted(), 'still mounted after SIGTERM'
    assert fu.log_lines(m, 'unmounting')


@pytest.mark.parametrize('where', ['cdn', 'resolve'])
@pytest.mark.parametrize('n', [1, 4])
def test_sigterm_with_reads_in_flight(mount, hub, n, where):
    """SIGTERM while 1 or 4 reads (of chunks 2, 0, 3, 4 of one file) wait on
    a stalled CDN transfer, or on a stalled resolve: hfmount exits 0 within
    5 s, unmounted; every read ends (an error) instead of hanging."""
    m = mount()
    readers = [_stalled_reader(m, hub, where)]
    path = m.path('acme', 'tiny', LFS)
    readers += [fu.Worker(fu.pread_path, path, 4096, i * CHUNK + 99,
                          name='reader %d' % i) for i in (0, 3, 4)[:n - 1]]
    time.sleep(0.5)
    t0 = time.monotonic()
    m.signal(signal.SIGTERM)
    try:
        code = m.wait_exit(fu.PROMPT)
        took = time.monotonic() - t0
        end = time.monotonic() + fu.PROMPT
        alive = [r.t.name for r in readers
                 if not r.join(max(0.1, end - time.monotonic()))]
    finally:
        if m.proc.poll() is None:   # the failure below: end it for teardown
            m.signal(signal.SIGKILL)
            m.wait_exit(util.EXIT_TIMEOUT)
        for r in readers:
            r.join(util.EXIT_TIMEOUT)
    assert code is not None, (
        'hfmount still running %.1f s after SIGTERM with %d reads in flight '
        '(readers still blocked: %r)' % (took, n, alive))
    assert code == 0, 'hfmount exited %s after SIGTERM' % code
    assert not alive, 'reads still blocked after SIGTERM: %r' % alive
    for r in readers:
        e = r.box.get('error')
        # EIO from hfmount, or ECONNABORTED from the kernel when the
        # session closes with the request still pending
        assert isinstance(e, OSError) and e.errno in (
            errno.EIO, errno.ENOTCONN, errno.ECONNABORTED), r.box
    assert not m.mounted(), 'still mounted after SIGTERM'


@pytest.mark.parametrize('wait', [0, 1.5], ids=['at-once', 'after-1.5s'])
def test_kill9_then_new_hfmount_cleans_stale_mount(mount, hub, wait):
    """kill -9 leaves a stale mount (statfs: ENOTCONN). A new hfmount on the
    same mountpoint, started at once (as a supervisor restarting it would)
    or 1.5 s later, says it found a stale mount, cleans it, mounts, and
    reads the right bytes."""
    m = mount()
    util.check_content(read_bytes(m.path('acme', 'tiny', 'config.json')),
                       _config(hub), 'config.json')
    fu.kill9(m)
    assert fu.statfs_errno(m.mnt) == errno.ENOTCONN, (
        '%s should be a stale mount after kill -9' % m.mnt)
    time.sleep(wait)
    nxt = fu.same_mountpoint(m, 'after_kill9')
    with fu.own_mount(nxt, ready=False):
        fu.wait_remounted(nxt)
        err = nxt.stderr_text()
        assert 'stale mount' in err, (
            'no message about the stale mount on stderr: %r' % err)
        util.check_content(read_bytes(nxt.path('acme', 'tiny',
                                                'config.json')),
                           _config(hub), 'config.json after the restart')
        util.check_content(read_bytes(nxt.path('acme', 'tiny', LFS)),
                           hub.files(*MODEL, 'main')[LFS], LFS)


def test_lazy_unmount_with_reads_in_flight(mount, hub):
    """fusermount3 -u -z while reads wait on a stalled transfer: hfmount
    exits 0 within 5 s and the reads end with an error, not a hang."""
    m = mount()
    readers = [_stalled_reader(m, hub)]
    path = m.path('acme', 'tiny', LFS)
    readers += [fu.Worker(fu.pread_path, path, 4096, i * CHUNK + 99,
                          name='reader %d' % i) for i in (0, 3, 4)]
    time.sleep(0.5)
    t0 = time.monotonic()
    fu.fusermount_lazy(m.mnt)
    try:
        code = m.wait_exit(fu.PROMPT)
        took = time.monotonic() - t0
        end = time.monotonic() + fu.PROMPT
        alive = [r.t.name for r in readers
                 if not r.join(max(0.1, end - time.monotonic()))]
    finally:
        if m.proc.poll() is None:   # the failure below: end it for teardown
            m.signal(signal.SIGKILL)
            m.wait_exit(util.EXIT_TIMEOUT)
        for r in readers:
            r.join(util.EXIT_TIMEOUT)
    assert code is not None, (
        'hfmount still running %.1f s after fusermount3 -u -z with reads in '
        'flight (readers still blocked: %r)' % (took, alive))
    assert code == 0, 'hfmount exited %s after a lazy unmount' % code
    assert not alive, 'reads still blocked after hfmount exited: %r' % alive
