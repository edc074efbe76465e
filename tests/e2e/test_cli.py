"""Command line: --help, --version, bad input (exit 2), mount failures,
daemon mode, signals, -o, --cache-size, --cache-dir default, --log-file and
--log-level."""
import json
import os
import re
import signal
import subprocess

import pytest

import util
from util import read_bytes

OPTIONS = ['-f', '--foreground', '--cache-dir', '--cache-size',
           '--cache-memory', '--log-file',
           '--log-level', '-o', '--version', '--help']


def _mentions(text, opt):
    return re.search(r'(?<![\w-])%s(?![\w-])' % re.escape(opt), text)


def test_help(hfmount):
    r = util.run_cmd([hfmount, '--help'])
    assert r.returncode == 0, 'hfmount --help exited %d: %s' % (r.returncode,
                                                               r.stderr)
    missing = [o for o in OPTIONS if not _mentions(r.stdout, o)]
    assert not missing, ('hfmount --help (stdout) does not mention %r:\n%s'
                         % (missing, r.stdout or r.stderr))
    for word in ('mountpoint', 'repo'):
        assert word in r.stdout.lower(), '--help lacks %r' % word
    for level in ('error', 'warn', 'info', 'debug'):
        assert level in r.stdout, '--help lacks log level %r' % level


def test_version(hfmount):
    r = util.run_cmd([hfmount, '--version'])
    assert r.returncode == 0, 'hfmount --version exited %d' % r.returncode
    v = util.project_version()
    assert v in r.stdout, '--version printed %r, want %s' % (r.stdout, v)


def _run_rejected(hfmount, hub, tmp_path, args, timeout=15):
    """Runs hfmount in the foreground expecting it to refuse; if it mounts
    instead, unmounts and fails."""
    mnt = tmp_path / 'mnt'
    mnt.mkdir(exist_ok=True)
    mnt = os.path.realpath(str(mnt))
    argv = [hfmount] + [a.replace('MNT', mnt) for a in args]
    env = util.clean_env(hub.api, str(tmp_path))
    out = tmp_path / 'out'
    err = tmp_path / 'err'
    with open(out, 'wb') as o, open(err, 'wb') as e:
        p = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=o,
                             stderr=e, env=env, start_new_session=True)
    try:
        code = p.wait(timeout)
    except subprocess.TimeoutExpired:
        code = None
    finally:
        if util.is_mounted(mnt):
            util.fusermount_u(mnt, lazy=True)
        if p.poll() is None:
            p.kill()
            p.wait(util.EXIT_TIMEOUT)
    assert code is not None, ('%r kept running (mounted: accepted bad input)'
                              % argv)
    return code, util.read_text(str(out)), util.read_text(str(err))


@pytest.mark.parametrize('option, size', [
    ('--cache-size', v) for v in ('abc', '12X', '-1G', '10GG', '1.5.G',
                                  '99999999999999999999G', '')] + [
    ('--cache-memory', v) for v in ('abc', '15M', '65G', '0', '')])
def test_bad_size_exits_2(hfmount, hub, tmp_path, option, size):
    code, out, err = _run_rejected(
        hfmount, hub, tmp_path,
        ['-f', '--cache-dir', str(tmp_path / 'c'), option, size, 'MNT'])
    assert code == 2, '%s %r: exit %s, want 2' % (option, size, code)
    assert option[2:] in err or (size and size in err), (
        '%s %r: message does not name the option or value: %r'
        % (option, size, err))


@pytest.mark.parametrize('args', [
    [],
    ['--no-such-option', 'MNT'],
    ['-f', 'acme/tiny', 'MNT', 'extra-argument'],
    ['-f', '--log-level', 'loud', 'MNT'],
    ['-f', '--cache-size'],
], ids=['no-args', 'unknown-option', 'extra-arg', 'bad-log-level',
        'missing-value'])
def test_usage_errors_exit_2(hfmount, hub, tmp_path, args):
    code, out, err = _run_rejected(hfmount, hub, tmp_path, args)
    assert code == 2, '%r: exit %s, want 2' % (args, code)
    assert err.strip(), '%r: no message on stderr' % args


@pytest.mark.parametrize('foreground', [True, False],
                         ids=['foreground', 'daemon'])
@pytest.mark.parametrize('kind', ['missing', 'regular-file'])
def test_bad_mountpoint_fails_with_message(hfmount, hub, tmp_path,
                                           foreground, kind):
    target = tmp_path / 'not-a-dir'
    if kind == 'regular-file':
        target.write_text('x')
    args = (['-f'] if foreground else []) + [
        '--cache-dir', str(tmp_path / 'c'), str(target)]
    code, out, err = _run_rejected(hfmount, hub, tmp_path, args)
    assert code != 0, 'mounting on a %s path exited 0' % kind
    assert str(target) in err, (
        'stderr does not name the %s mountpoint %s: %r' % (kind, target, err))
    assert not util.is_mounted(str(target))


def test_daemon_mode(hfmount, hub, tmp_path):
    mnt = tmp_path / 'mnt'
    mnt.mkdir()
    mnt = os.path.realpath(str(mnt))
    log = str(tmp_path / 'daemon.log')
    argv = [hfmount, '--cache-dir', str(tmp_path / 'c'), '--log-file', log,
            '--log-level', 'debug', mnt]
    env = util.clean_env(hub.api, str(tmp_path))
    # The daemon's stderr is /dev/null: sanitizer reports go to files.
    for var in ('ASAN_OPTIONS', 'UBSAN_OPTIONS'):
        env[var] = ':'.join(filter(None, [env.get(var), 'log_path=%s' % (
            tmp_path / 'sanitizer')]))
    with open(tmp_path / 'out', 'wb') as o, open(tmp_path / 'err', 'wb') as e:
        p = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=o,
                             stderr=e, env=env)
    pids = []
    try:
        try:
            code = p.wait(util.MOUNT_TIMEOUT)
        except subprocess.TimeoutExpired:
            pytest.fail('hfmount (daemon mode) did not return within %s s'
                        % util.MOUNT_TIMEOUT)
        mounted = util.is_mounted(mnt)
        assert code == 0, 'hfmount (daemon mode) exited %d: %s' % (
            code, util.read_text(str(tmp_path / 'err')))
        assert mounted, 'hfmount returned before %s was mounted' % mnt
        pids = util.pids_with_arg(hfmount, mnt)
        assert len(pids) == 1, 'daemon processes for %s: %r' % (mnt, pids)
        assert p.pid not in pids, 'the foreground process is the daemon'
        util.check_content(read_bytes(os.path.join(mnt, 'acme', 'tiny',
                                                   'config.json')),
                           hub.files('model', 'acme/tiny')['config.json'],
                           'config.json through the daemon')
        r = util.fusermount_u(mnt)
        assert r is not None and r.returncode == 0, 'fusermount3 -u: %r' % r
        assert util.wait_pid_gone(pids[0], util.EXIT_TIMEOUT), (
            'daemon %d still running %s s after fusermount3 -u'
            % (pids[0], util.EXIT_TIMEOUT))
        assert not util.is_mounted(mnt)
        reports = ''.join(util.read_text(str(f))
                          for f in tmp_path.glob('sanitizer*'))
        text = util.read_text(log) + reports
        assert not util.sanitizer_lines(text), util.sanitizer_report(text)
    finally:
        if util.is_mounted(mnt):
            util.fusermount_u(mnt, lazy=True)
        for pid in pids:
            if not util.pid_gone(pid):
                os.kill(pid, signal.SIGKILL)


@pytest.mark.parametrize('sig', [signal.SIGTERM, signal.SIGINT],
                         ids=['SIGTERM', 'SIGINT'])
def test_signal_unmounts_cleanly(mount, hub, sig):
    m = mount()
    read_bytes(m.path('acme', 'tiny', 'config.json'))
    m.signal(sig)
    code = m.wait_exit()
    assert code is not None, 'hfmount still running %s s after %s' % (
        util.EXIT_TIMEOUT, sig.name)
    assert code == 0, 'hfmount exited %d after %s, want 0' % (code, sig.name)
    assert not m.mounted(), '%s still mounted after %s' % (m.mnt, sig.name)


def test_fuse_options_passed(mount):
    m = mount(args=['-o', 'fsname=hfm-e2e,allow_other'])
    e = util.mount_entry(m.mnt)
    assert e['source'] == 'hfm-e2e', 'mount source %r, want the -o fsname' % (
        e['source'])
    assert 'allow_other' in e['superopts'].split(','), (
        'allow_other not in the mount options %r' % e['superopts'])


@pytest.mark.parametrize('size', ['512M', '20G'])
def test_cache_size_accepted(mount, hub, size):
    m = mount(args=['--cache-size', size])
    util.check_content(read_bytes(m.path('acme', 'tiny', 'config.json')),
                       hub.files('model', 'acme/tiny')['config.json'],
                       'config.json with --cache-size ' + size)


@pytest.mark.parametrize('memory, ahead', [('16M', False), ('256M', True),
                                           (None, True)])
def test_cache_memory_bounds_the_readahead(mount, hub, memory, ahead):
    """--cache-memory bounds the chunk buffers: with 16M (4 of them) a
    stream of the 5-chunk model.safetensors reads no chunk ahead, with
    256M or the default it does; the bytes are right either way."""
    m = mount(args=['--cache-memory', memory] if memory else [])
    name = 'model.safetensors'
    util.check_content(read_bytes(m.path('acme', 'tiny', name)),
                       hub.files('model', 'acme/tiny')[name],
                       '%s with --cache-memory %s' % (name, memory))
    st = json.loads(util.getxattr(m.mnt, 'user.hf.stats'))
    assert (st['chunks_read_ahead'] > 0) == ahead, (
        '--cache-memory %s: chunks_read_ahead %d' % (memory,
                                                     st['chunks_read_ahead']))


def _nonempty_tree(path):
    return any(files for _, _, files in os.walk(path))


def test_cache_dir_used(mount, hub, tmp_path):
    m = mount()
    read_bytes(m.path('acme', 'tiny', 'config.json'))
    m.unmount()
    assert _nonempty_tree(m.cache_dir), '--cache-dir %s holds no file' % (
        m.cache_dir)


@pytest.mark.parametrize('xdg', [True, False], ids=['XDG_CACHE_HOME', 'HOME'])
def test_default_cache_dir(mount, hub, tmp_path, xdg):
    home = tmp_path / 'home'
    home.mkdir()
    env = {'HOME': str(home)}
    if xdg:
        env['XDG_CACHE_HOME'] = str(tmp_path / 'xdg')
        want = tmp_path / 'xdg' / 'hfmount'
    else:
        env['XDG_CACHE_HOME'] = None
        want = home / '.cache' / 'hfmount'
    m = mount(cache_dir=util.NO_CACHE_DIR, env=env)
    read_bytes(m.path('acme', 'tiny', 'config.json'))
    m.unmount()
    assert _nonempty_tree(str(want)), 'default cache dir %s holds no file' % (
        want)


def test_log_levels(mount, hub):
    debug = mount(log_level='debug')
    quiet = mount(log_level='error')
    for m in (debug, quiet):
        read_bytes(m.path('acme', 'tiny', 'config.json'))
        m.unmount()
    assert debug.log_text().strip(), '--log-level debug wrote nothing to ' \
        '--log-file'
    assert not quiet.log_text().strip(), (
        '--log-level error logged on a run without errors:\n%s'
        % util.tail(quiet.log_text()))


def test_log_to_stderr_in_foreground_by_default(mount, hub):
    m = mount(log_file=False)
    read_bytes(m.path('acme', 'tiny', 'config.json'))
    m.unmount()
    assert m.stderr_text().strip(), ('hfmount -f --log-level debug without '
                                     '--log-file wrote nothing to stderr')
