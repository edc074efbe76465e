"""Failures: an unreachable Hub or one failing past the retries gives EIO
within a bounded time, never a hang, and the mount stays usable; a single
bad answer never yields wrong bytes; hostile tree pages are filtered."""
import errno
import os
import time

import pytest

import util
from util import read_bytes, listdir, fmt_rows

MODEL = ('model', 'acme/tiny')


def _read(path):
    with open(path, 'rb') as f:
        return f.read()


def _eio(fn, *args, what):
    elapsed = util.expect_errno(errno.EIO, fn, *args, what=what,
                                timeout=util.EIO_BOUND)
    assert elapsed < util.EIO_BOUND, '%s took %.1f s' % (what, elapsed)


def _assert_up(m):
    assert m.proc.poll() is None, 'hfmount exited: %s' % m.diagnostics()
    assert m.mounted(), 'no longer mounted'


def test_hub_down_gives_eio(mount):
    m = mount(endpoint='http://127.0.0.1:%d' % util.closed_port())
    assert sorted(listdir(m.mnt)) == ['datasets', 'spaces'], (
        'ls MNT needs no Hub request')
    _eio(os.stat, m.path('acme', 'tiny'), what='stat MNT/acme/tiny (Hub down)')
    _eio(os.stat, m.path('datasets', 'acme', 'data'),
         what='stat MNT/datasets/acme/data (Hub down)')
    _assert_up(m)
    assert 'datasets' in listdir(m.mnt)


# name: (fault kwargs, operation on the repo dir, extra hfmount args)
PERSISTENT = {
    'resolve-503': (dict(match='/resolve/', action='status', status=503,
                         origin='api'), 'read config.json', ()),
    'resolve-cache-500': (dict(match='/api/resolve-cache/', action='status',
                               status=500, origin='api'),
                          'read config.json', ()),
    'resolve-redirect-loop': (dict(match='/resolve/', action='redirect_loop',
                                   origin='api'), 'read config.json', ()),
    'cdn-503': (dict(match='/', action='status', status=503, origin='cdn'),
                'read model.safetensors', ()),
    'cdn-reset': (dict(match='/', action='reset', origin='cdn'),
                  'read model.safetensors', ()),
    'tree-503': (dict(match='/tree/', action='status', status=503,
                      origin='api'), 'list', ()),
    'tree-bad-json': (dict(match='/tree/', action='bad_json', origin='api'),
                      'list', ()),
    'revision-502': (dict(match='/api/models/acme/tiny', action='status',
                          status=502, origin='api'), 'lookup', ()),
    'revision-bad-json': (dict(match='/api/models/acme/tiny',
                               action='bad_json', origin='api'), 'lookup',
                          ()),
    # --timeout/--retries (hfmount options beyond the issue) keep a stalled
    # CDN inside the suite's time budget.
    'cdn-stall': (dict(match='/', action='stall', seconds=25, origin='cdn'),
                  'read model.safetensors', ('--timeout', '2', '--retries',
                                             '2')),
}


def _op(m, hub, op):
    """Runs op; returns a checker to run once the Hub is healthy again."""
    top = m.path('acme', 'tiny')
    files = hub.files(*MODEL, 'main')
    if op.startswith('read '):
        rel = op[5:]
        path = os.path.join(top, rel)
        return (_read, path), lambda: util.check_content(
            read_bytes(path), files[rel], rel + ' once the Hub answers again')
    if op == 'list':
        def check():
            got = sorted(listdir(top))
            assert got == hub.children(*MODEL, 'main'), (
                'ls MNT/acme/tiny once the Hub answers again: %r' % got)
        return (os.listdir, top), check
    assert op == 'lookup'
    return (os.stat, top), lambda: util.stat(top)


@pytest.mark.parametrize('name', sorted(PERSISTENT))
def test_persistent_fault_gives_eio_then_recovers(mount, hub, name):
    fault, op, args = PERSISTENT[name]
    m = mount(args=args)
    top = m.path('acme', 'tiny')
    if op != 'lookup':
        util.stat(top)
    if op.startswith('read '):
        util.stat(os.path.join(top, op[5:]))  # listing done before the fault
    (fn, arg), check = _op(m, hub, op)
    hub.fault(count=100, **fault)
    _eio(fn, arg, what='%s under fault %s' % (op, name))
    _assert_up(m)
    hub.reset()  # clears the fault
    check()
    util.check_content(read_bytes(os.path.join(top, 'README.md')),
                       hub.files(*MODEL, 'main')['README.md'],
                       'README.md after the fault')


# A single bad answer: retried, so the read returns the right bytes.
TRANSIENT = {
    'cdn-truncate': (dict(match='/', action='truncate', origin='cdn'),
                     'model.safetensors'),
    'cdn-reset': (dict(match='/', action='reset', origin='cdn'),
                  'model.safetensors'),
    'cdn-503': (dict(match='/', action='status', status=503, origin='cdn'),
                'model.safetensors'),
    'resolve-429': (dict(match='/resolve/', action='ratelimit', t=1,
                         origin='api'), 'config.json'),
    'resolve-503': (dict(match='/resolve/', action='status', status=503,
                         origin='api'), 'config.json'),
    'resolve-cache-truncate': (dict(match='/api/resolve-cache/',
                                    action='truncate', origin='api'),
                               'config.json'),
    'resolve-cache-reset': (dict(match='/api/resolve-cache/', action='reset',
                                 origin='api'), 'config.json'),
}


@pytest.mark.parametrize('name', sorted(TRANSIENT))
def test_transient_fault_is_retried(mount, hub, name):
    fault, rel = TRANSIENT[name]
    m = mount()
    path = m.path('acme', 'tiny', rel)
    util.stat(path)
    hub.fault(count=1, **fault)
    t0 = time.monotonic()
    data = util.bounded(_read, path, timeout=util.EIO_BOUND,
                        what='read %s after one %s' % (rel, name))
    util.check_content(data, hub.files(*MODEL, 'main')[rel],
                       '%s after one %s' % (rel, name))
    assert time.monotonic() - t0 < util.EIO_BOUND


# A lie about the content: the right bytes or EIO, never wrong bytes.
LIES = {
    'cdn-wrong-range': dict(match='/', action='wrong_range', origin='cdn'),
    'cdn-wrong-size': dict(match='/', action='wrong_size', origin='cdn'),
}


@pytest.mark.parametrize('name', sorted(LIES))
@pytest.mark.parametrize('count', [1, 100])
def test_content_lie_never_returns_wrong_bytes(mount, hub, name, count):
    rel = 'model.safetensors'
    m = mount()
    path = m.path('acme', 'tiny', rel)
    util.stat(path)
    hub.fault(count=count, **LIES[name])
    info = hub.files(*MODEL, 'main')[rel]
    try:
        data = util.bounded(_read, path, timeout=util.EIO_BOUND,
                            what='read %s under %s' % (rel, name))
    except OSError as e:
        assert e.errno == errno.EIO, 'want the right bytes or EIO, got %s' % (
            util.errname(e.errno))
    else:
        util.check_content(data, info, '%s under %s x%d' % (rel, name, count))
    _assert_up(m)
    hub.reset()
    util.check_content(read_bytes(path), info, rel + ' after the faults')


def test_hostile_tree_page_is_filtered(mount, hub):
    """Tree pages with '..', '.', '', NUL, a 300-byte name, paths outside
    the directory, a duplicate, a symlink, bad sizes, invalid UTF-8: the
    listing shows exactly the fixture's names."""
    m = mount()
    top = m.path('acme', 'tiny')
    util.stat(top)
    hub.fault(match='/tree/', action='hostile', origin='api', count=100)
    got = sorted(listdir(top))
    want = hub.children(*MODEL, 'main')
    assert got == want, 'ls with hostile entries: extra %r, missing %r' % (
        sorted(set(got) - set(want)), sorted(set(want) - set(got)))
    sub = sorted(listdir(os.path.join(top, 'nested')))
    assert sub == hub.children(*MODEL, 'main', 'nested'), sub
    for name in ('outside.txt', 'negative.txt', 'absurd.bin', 'link',
                 'a', 'sub'):
        util.expect_errno(errno.ENOENT, os.stat, os.path.join(top, name),
                          what='stat hostile entry %r' % name)
    util.check_content(read_bytes(os.path.join(top, 'config.json')),
                       hub.files(*MODEL, 'main')['config.json'],
                       'config.json beside hostile entries')
    rows = [r for r in hub.requests() if util.classify(r) == 'tree']
    assert rows, 'no tree request under the hostile fault\n' + fmt_rows(rows)
