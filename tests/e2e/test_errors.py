"""Failures: an unreachable Hub or one failing past the retries gives EIO
within a bounded time, never a hang, and the mount stays usable."""
import errno
import os


import util
from util import read_bytes, listdir

MODEL = ('model', 'acme/tiny')


def _eio(fn, *args, what):
    elapsed = util.expect_errno(errno.EIO, fn, *args, what=what,
                                timeout=util.EIO_BOUND)
    assert elapsed < util.EIO_BOUND, '%s took %.1f s' % (what, elapsed)


def test_hub_down_gives_eio(mount):
    m = mount(endpoint='http://127.0.0.1:%d' % util.closed_port())
    assert sorted(listdir(m.mnt)) == ['datasets', 'spaces'], (
        'ls MNT needs no Hub request')
    _eio(os.stat, m.path('acme', 'tiny'), what='stat MNT/acme/tiny (Hub down)')
    _eio(os.stat, m.path('datasets', 'acme', 'data'),
         what='stat MNT/datasets/acme/data (Hub down)')
    assert m.proc.poll() is None and m.mounted(), 'the mount went away'
    assert 'datasets' in listdir(m.mnt)


def _assert_up(m):
    assert m.proc.poll() is None, 'hfmount exited: %s' % m.diagnostics()
    assert m.mounted(), 'no longer mounted'


def test_resolve_5xx_gives_eio_and_mount_survives(mount, hub):
    m = mount()
    top = m.path('acme', 'tiny')
    files = hub.files(*MODEL, 'main')
    util.stat(os.path.join(top, 'config.json'))  # listing done before
    hub.fault('/resolve/', action='status', status=503, origin='api',
              count=50)
    _eio(_read, os.path.join(top, 'config.json'),
         what='read config.json with /resolve/ answering 503')
    rows = [r for r in hub.requests() if util.classify(r) == 'resolve']
    assert all(r['status'] == 503 for r in rows), util.fmt_rows(rows)
    _assert_up(m)
    hub.reset()  # clears the fault
    util.check_content(read_bytes(os.path.join(top, 'README.md')),
                       files['README.md'], 'README.md after the faults')
    util.check_content(read_bytes(os.path.join(top, 'config.json')),
                       files['config.json'],
                       'config.json once the Hub answers again')


def test_cdn_5xx_gives_eio_and_mount_survives(mount, hub):
    m = mount()
    path = m.path('acme', 'tiny', 'model.safetensors')
    info = hub.files(*MODEL, 'main')['model.safetensors']
    util.stat(path)
    hub.fault('/', action='status', status=503, origin='cdn', count=50)
    _eio(_read, path, what='read model.safetensors with the CDN answering 503')
    _assert_up(m)
    hub.reset()
    util.check_content(read_bytes(path), info,
                       'model.safetensors once the CDN answers again')


def test_tree_5xx_gives_eio_and_mount_survives(mount, hub):
    m = mount()
    top = m.path('acme', 'tiny')
    util.stat(top)
    hub.fault('/tree/', action='status', status=503, origin='api', count=50)
    _eio(os.listdir, top, what='ls MNT/acme/tiny with /tree/ answering 503')
    _assert_up(m)
    hub.reset()
    got = sorted(listdir(top))
    assert got == hub.children(*MODEL, 'main'), (
        'ls MNT/acme/tiny once the Hub answers again: %r' % got)


def _read(path):
    with open(path, 'rb') as f:
        return f.read()
