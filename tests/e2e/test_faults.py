"""Network faults (issue 5), each switched on with the fake Hub's
/_fake/fault: 429 with RateLimit t (or Retry-After), 5xx bursts, 5xx
forever, a body cut short, a reset mid-body, a stall, a Content-Range that
does not match, a redirect loop, the Hub down mid-read and at mount time.

Each ends in the right bytes after a retry, or EIO with one log line;
never wrong bytes, never a read that blocks past a bound, and the mount
stays up. Retries are checked in the request log: exactly --retries tries
per range, waits between tries as long as the server asked.

Reads of model.safetensors go to chunk 3 (offset 12 MiB + 777: a random
access, so no readahead muddles the counts); reads of config.json go
through resolve -> resolve-cache.
"""
import errno
import os
import time

import pytest

import util
from util import read_bytes, fmt_rows
import faults_util as fu
from faults_util import MODEL, LFS, CHUNK

OFF = 3 * CHUNK + 777   # in chunk 3
LEN = 65536


def _setup(mount, hub, args=()):
    """A mount with the listing loaded and config.json's and chunk 0's
    resolve done; the request log cleared."""
    m = mount(args=args)
    util.stat(m.path('acme', 'tiny', LFS))
    util.stat(m.path('acme', 'tiny', 'config.json'))
    hub.reset()
    return m


def _pread_lfs(m):
    return fu.pread_path(m.path('acme', 'tiny', LFS), LEN, OFF)


def _chunk3_rows(hub):
    """The CDN requests whose range holds the read's first byte: the tries
    of the one fetch that serves it (a random read asks for the blocks
    around it, not the whole chunk)."""
    rows = []
    for r in fu.cdn_rows(hub.requests()):
        rng = fu.range_of(r)
        if rng and rng[0] <= OFF <= rng[1]:
            rows.append(r)
    return rows


def _resolve_rows(hub, name='config.json'):
    return fu.rows_for(hub.requests(), name, 'resolve')


def _lfs_bytes(hub):
    return hub.download(*MODEL, 'main', LFS)[OFF:OFF + LEN]


def _config(hub):
    return hub.files(*MODEL, 'main')['config.json']


def _timed(fn, *args, what, timeout=util.EIO_BOUND):
    t0 = time.monotonic()
    v = util.bounded(fn, *args, timeout=timeout, what=what)
    return v, time.monotonic() - t0


def _eio(fn, *args, what, bound=fu.FAIL_BOUND):
    e, took = fu.errno_of(fn, *args, timeout=util.EIO_BOUND, what=what)
    assert e == errno.EIO, '%s: want EIO, got %s' % (what, util.errname(e))
    assert took < bound, '%s: EIO after %.1f s (bound %s s)' % (what, took,
                                                                 bound)
    return took


def _one_error_line(m, needle):
    lines = [l for l in fu.level_lines(m, 'error') if needle in l]
    assert len(lines) == 1, ('want one error line naming %r, got:\n%s\n'
                             '--- log:\n%s' % (needle, '\n'.join(lines),
                                               util.tail(m.log_text(), 30)))
    return lines[0]


# ------------------------------------------------------------------ 429 ---

RATELIMIT = {
    # name: fault, target
    'resolve-ratelimit-t1': (dict(match='/resolve/', origin='api',
                                  action='ratelimit', t=1), 'config.json'),
    'cdn-ratelimit-t1': (dict(match=LFS, origin='cdn', action='ratelimit',
                              t=1), LFS),
    'resolve-retry-after-1': (dict(match='/resolve/', origin='api',
                                   action='status', status=429,
                                   headers={'Retry-After': '1'}),
                              'config.json'),
    'tree-ratelimit-t1': (dict(match='/tree/', origin='api',
                               action='ratelimit', t=1), 'nested'),
}


@pytest.mark.parametrize('name', sorted(RATELIMIT))
def test_ratelimit_waits_then_right_bytes(mount, hub, name):
    """One 429 (RateLimit r=0;t=1, or Retry-After: 1): the next try comes
    no sooner than 1 s later, and the answer is right within 10 s."""
    fault, target = RATELIMIT[name]
    m = _setup(mount, hub)
    hub.fault(count=1, **fault)
    if target == LFS:
        got, took = _timed(_pread_lfs, m, what='pread ' + LFS)
        assert got == _lfs_bytes(hub)
        rows = _chunk3_rows(hub)
    elif target == 'nested':
        got, took = _timed(os.listdir, m.path('acme', 'tiny', 'nested'),
                           what='ls nested')
        assert sorted(got) == hub.children(*MODEL, 'main', 'nested')
        rows = [r for r in hub.requests() if util.classify(r) == 'tree']
    else:
        got, took = _timed(fu.read_file, m.path('acme', 'tiny', target),
                           what='read ' + target)
        util.check_content(got, _config(hub), target)
        rows = _resolve_rows(hub, target)
    assert [r['status'] for r in rows][:1] == [429] and len(rows) == 2, (
        'want one 429 then one success:\n%s' % fmt_rows(rows))
    gap = rows[1]['t'] - rows[0]['t']
    assert gap >= 0.95, 'retried %.2f s after a 429 asking for 1 s' % gap
    assert took < 10, 'took %.1f s after a 1 s rate limit' % took


# ----------------------------------------------------------- 5xx burst ---

@pytest.mark.parametrize('status', [500, 502, 503, 504])
def test_cdn_5xx_burst_is_retried(mount, hub, status):
    """Two 5xx from the CDN, then the right bytes: three tries of chunk 3,
    with backoff, within 10 s; nothing logged at error level."""
    m = _setup(mount, hub)
    hub.fault(match=LFS, origin='cdn', action='status', status=status,
              count=2)
    got, took = _timed(_pread_lfs, m, what='pread under %d x2' % status)
    assert got == _lfs_bytes(hub)
    rows = _chunk3_rows(hub)
    assert [r['status'] for r in rows] == [status, status, 206], (
        fmt_rows(rows))
    assert took < 10
    assert not fu.level_lines(m, 'error'), fu.level_lines(m, 'error')


def test_resolve_503_burst_is_retried(mount, hub):
    m = _setup(mount, hub)
    hub.fault(match='/resolve/', origin='api', action='status', status=503,
              count=2)
    got, took = _timed(fu.read_file, m.path('acme', 'tiny', 'config.json'),
                       what='read config.json under 503 x2')
    util.check_content(got, _config(hub), 'config.json')
    assert [r['status'] for r in _resolve_rows(hub)] == [503, 503, 307], (
        fmt_rows(_resolve_rows(hub)))
    assert took < 10


# --------------------------------------------------------- 5xx forever ---

@pytest.mark.parametrize('target', ['cdn', 'resolve'])
def test_503_forever_gives_eio_and_one_log_line(mount, hub, target):
    """503 on every try, --retries 3: EIO within 20 s after exactly three
    tries per read; one error line for two failed reads; the mount stays
    up and reads right once the Hub recovers."""
    m = _setup(mount, hub, args=('--retries', '3'))
    if target == 'cdn':
        hub.fault(match=LFS, origin='cdn', action='status', status=503,
                  count=1000)
        op, what, rows = _pread_lfs, 'pread ' + LFS, _chunk3_rows
        args = (m,)
    else:
        hub.fault(match='/resolve/', origin='api', action='status',
                  status=503, count=1000)
        op, what = fu.read_file, 'read config.json'
        args = (m.path('acme', 'tiny', 'config.json'),)

        def rows(h):
            return _resolve_rows(h)
    _eio(op, *args, what=what + ' (503 forever)')
    tries = rows(hub)
    assert tries and all(r['status'] == 503 for r in tries), fmt_rows(tries)
    # The kernel asks again once after a failed (readahead) read, so one
    # pread is one or two FUSE reads: 3 tries each.
    assert len(tries) in (3, 6), (
        'with --retries 3, want 3 tries per FUSE read, got %d:\n%s'
        % (len(tries), fmt_rows(tries)))
    _eio(op, *args, what=what + ' again')
    name = LFS if target == 'cdn' else 'config.json'
    line = _one_error_line(m, "cannot read '%s'" % name)
    assert '503' in line, line
    fu.assert_up(m)
    hub.reset()
    if target == 'cdn':
        assert _pread_lfs(m) == _lfs_bytes(hub)
    else:
        util.check_content(read_bytes(*args), _config(hub), 'config.json')


# ----------------------------------------- truncate, reset, wrong_range ---

BODY_FAULTS = {
    'truncate': dict(action='truncate'),
    'reset': dict(action='reset'),
    'wrong_range': dict(action='wrong_range'),
    'stall': dict(action='stall', seconds=30),
}


@pytest.mark.parametrize('name', sorted(BODY_FAULTS))
def test_cdn_body_fault_once_is_retried(mount, hub, name):
    """One bad CDN answer for chunk 3 (cut short, reset, shifted
    Content-Range, a 30 s stall under --timeout 2): a second try gives the
    right bytes; never the bad answer's bytes."""
    m = _setup(mount, hub, args=('--timeout', '2'))
    hub.fault(match=LFS, origin='cdn', count=1, **BODY_FAULTS[name])
    got, took = _timed(_pread_lfs, m, what='pread under one ' + name)
    assert got == _lfs_bytes(hub), 'wrong bytes after one %s' % name
    rows = _chunk3_rows(hub)
    assert len(rows) == 2, 'want two tries of chunk 3:\n%s' % fmt_rows(rows)
    if name == 'stall':
        assert 1.5 <= took < 10, (
            'a stall under --timeout 2 ended after %.1f s' % took)
    else:
        assert took < 10
    if name == 'wrong_range':
        assert fu.log_lines(m, 'does not match the range'), (
            'the shifted Content-Range was not named in the log')


@pytest.mark.parametrize('name', sorted(BODY_FAULTS))
def test_cdn_body_fault_forever_gives_eio(mount, hub, name):
    """The same fault on every try, --retries 2 --timeout 2: EIO within
    20 s, one error line, the mount stays up; right bytes after."""
    m = _setup(mount, hub, args=('--timeout', '2', '--retries', '2'))
    hub.fault(match=LFS, origin='cdn', count=1000, **BODY_FAULTS[name])
    took = _eio(_pread_lfs, m, what='pread under %s forever' % name)
    if name == 'stall':
        assert took >= 3.5, (
            'two stalled tries under --timeout 2 ended after %.1f s' % took)
    rows = _chunk3_rows(hub)
    assert len(rows) in (2, 4), (
        'with --retries 2, want 2 tries per FUSE read:\n%s' % fmt_rows(rows))
    _one_error_line(m, "cannot read '%s'" % LFS)
    fu.assert_up(m)
    hub.reset()
    assert _pread_lfs(m) == _lfs_bytes(hub)


# --------------------------------------------------------- redirect loop ---

@pytest.mark.parametrize('origin', ['api', 'cdn'])
def test_redirect_loop_gives_eio(mount, hub, origin):
    """A 302 to itself, forever (on the resolve route, or on the CDN URL):
    EIO after a bounded number of hops, one error line naming the loop."""
    m = _setup(mount, hub)
    if origin == 'api':
        hub.fault(match='/resolve/', origin='api', action='redirect_loop',
                  count=1000)
        op, args = fu.read_file, (m.path('acme', 'tiny', 'config.json'),)
        name = 'config.json'
    else:
        hub.fault(match=LFS, origin='cdn', action='redirect_loop',
                  count=1000)
        op, args, name = _pread_lfs, (m,), LFS
    _eio(op, *args, what='read %s in a redirect loop' % name)
    rows = hub.requests()
    assert len(rows) <= 4 * 12, ('a redirect loop took %d requests:\n%s'
                                 % (len(rows), fmt_rows(rows[:20])))
    line = _one_error_line(m, "cannot read '%s'" % name)
    assert 'redirect' in line, line
    fu.assert_up(m)


# ------------------------------------------------------------- Hub down ---

def test_hub_down_mid_read_gives_eio_not_hang(mount, hub, tmp_path):
    """A fake Hub of its own, stopped after chunk 0 of model.safetensors
    was read: reading chunk 3, or a file never read, is EIO within 20 s
    (connection refused, --retries 2); what was read before still reads;
    the mount stays up; one error line per file."""
    (tmp_path / 'hub2').mkdir()
    down = util.FakeHub(str(tmp_path / 'hub2'))
    down.start()
    try:
        expected = hub.download(*MODEL, 'main', LFS)
        m = mount(endpoint=down.api, args=('--retries', '2'))
        path = m.path('acme', 'tiny', LFS)
        assert fu.pread_path(path, 4096, 0) == expected[:4096]
        util.stat(m.path('acme', 'tiny', 'config.json'))
        down.stop()
        _eio(_pread_lfs, m, what='pread chunk 3 with the Hub down')
        _eio(fu.read_file, m.path('acme', 'tiny', 'config.json'),
             what='read config.json with the Hub down')
        assert fu.pread_path(path, 4096, 0) == expected[:4096], (
            'chunk 0, read before the Hub went down')
        assert sorted(util.listdir(m.path('acme', 'tiny'))) == \
            hub.children(*MODEL, 'main')
        _one_error_line(m, "cannot read '%s'" % LFS)
        _one_error_line(m, "cannot read 'config.json'")
        fu.assert_up(m)
    finally:
        down.stop()


def test_hub_down_at_mount_time(hfmount, tmp_path):
    """Single-repo mode with nothing listening at HF_ENDPOINT: hfmount
    exits non-zero within 20 s with a message, and mounts nothing."""
    mnt = tmp_path / 'mnt'
    mnt.mkdir()
    env = util.clean_env('http://127.0.0.1:%d' % util.closed_port(),
                         str(tmp_path / 'hf_home'))
    t0 = time.monotonic()
    r = fu.run_bounded([hfmount, '-f', '--retries', '2', '--cache-dir',
                        str(tmp_path / 'cache'), 'acme/tiny', str(mnt)],
                       timeout=fu.FAIL_BOUND, env=env)
    err = r.stderr.decode(errors='replace')
    assert r.returncode != 0, 'hfmount mounted with the Hub down'
    assert "cannot mount 'acme/tiny'" in err, err
    assert time.monotonic() - t0 < fu.FAIL_BOUND
    assert not util.is_mounted(os.path.realpath(str(mnt)))


def test_hub_down_whole_hub_mode_eio(mount):
    """Whole-Hub mode with the Hub down: the mount comes up, a repo lookup
    is EIO within 20 s with one error line; the mount stays up."""
    m = mount(endpoint='http://127.0.0.1:%d' % util.closed_port(),
              args=('--retries', '2'))
    _eio(os.stat, m.path('acme', 'tiny'), what='stat MNT/acme/tiny')
    _eio(os.stat, m.path('acme', 'tiny'), what='stat MNT/acme/tiny again')
    lines = fu.level_lines(m, 'error')
    assert len(lines) == 1, 'want one error line, got:\n%s' % '\n'.join(lines)
    fu.assert_up(m)
