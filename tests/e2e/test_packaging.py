"""Issue 6, packaging and habits: `cmake --install` (binary and a man page
man can read), /etc/fstab lines through mount.fuse3, the systemd unit
example, and shell-friendly exit codes and messages for mount failures.

What this machine cannot run (systemd as pid 1) has a manual check in
docs/usage.md ("systemd"); here the unit is verified with
`systemd-analyze verify` and its ExecStart/ExecStop lines are run as systemd
would run them.
"""
import json
import os
import re
import shlex
import shutil
import signal
import subprocess

import pytest

import util
from util import read_bytes

INSTALL_TIMEOUT = 120
UNIT = os.path.join(util.REPO, 'docs', 'examples', 'hfmount.service')
MAN = os.path.join(util.REPO, 'docs', 'hfmount.1')
STD_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'


def _build_dir(hfmount):
    """The CMake build tree of the binary under test (HFMOUNT_BIN's
    directory when it is one), else build/."""
    d = os.path.dirname(os.path.realpath(hfmount))
    if os.path.isfile(os.path.join(d, 'CMakeCache.txt')):
        return d
    return os.path.join(util.REPO, 'build')


def _env(hub, tmp_path, **extra):
    home = tmp_path / 'hf_home'
    home.mkdir(exist_ok=True)
    e = util.clean_env(hub.api, str(home))
    # A daemon's stderr is /dev/null: sanitizer reports go to files.
    for var in ('ASAN_OPTIONS', 'UBSAN_OPTIONS'):
        e[var] = ':'.join(filter(None, [e.get(var), 'log_path=%s' % (
            tmp_path / 'sanitizer')]))
    e.update(extra)
    return e


def _sanitizer_check(tmp_path, *logs):
    text = ''.join(util.read_text(str(f)) for f in tmp_path.glob('sanitizer*'))
    text += ''.join(util.read_text(str(l)) for l in logs)
    assert not util.sanitizer_lines(text), util.sanitizer_report(text)


def _reap(hfmount, mnt):
    """Teardown of a mount made through mount(8): unmount, then kill what
    is left of hfmount processes naming mnt. Returns the leftovers."""
    if util.is_mounted(mnt):
        r = util.fusermount_u(mnt)
        if r is None or r.returncode != 0:
            util.fusermount_u(mnt, lazy=True)
    left = [p for p in util.pids_with_arg(hfmount, mnt)
            if not util.wait_pid_gone(p, util.EXIT_TIMEOUT)]
    for pid in left:
        os.kill(pid, signal.SIGKILL)
    return left


# ------------------------------------------------------------- install ---

def test_cmake_install_puts_binary_and_man_page(hfmount, tmp_path):
    prefix = tmp_path / 'prefix'
    r = util.run_cmd(['cmake', '--install', _build_dir(hfmount), '--prefix',
                      str(prefix)], timeout=INSTALL_TIMEOUT)
    assert r.returncode == 0, 'cmake --install failed:\n%s\n%s' % (r.stdout,
                                                                   r.stderr)
    exe = prefix / 'bin' / 'hfmount'
    page = prefix / 'share' / 'man' / 'man1' / 'hfmount.1'
    assert os.access(str(exe), os.X_OK), '%s is not installed' % exe
    assert page.is_file(), '%s is not installed' % page
    with open(MAN, 'rb') as f:
        assert page.read_bytes() == f.read(), 'installed man page differs'
    r = util.run_cmd([str(exe), '--version'])
    assert r.returncode == 0 and util.project_version() in r.stdout, r


def _render(page, env=None):
    """The man page as text: man -l, or groff when man is missing."""
    e = dict(env or os.environ, MANWIDTH='100', MAN_KEEP_FORMATTING='0',
             LC_ALL='C.UTF-8')
    if shutil.which('man'):
        r = util.run_cmd(['man', '--warnings', '-P', 'cat', '-l', page],
                         env=e)
    elif shutil.which('groff'):
        r = util.run_cmd(['groff', '-man', '-ww', '-Tutf8', '-P-c', page],
                         env=e)
    else:
        pytest.skip('neither man (man-db) nor groff is installed: the man '
                    'page cannot be rendered here (apt-get install man-db)')
    assert r.returncode == 0, 'rendering %s failed: %s' % (page, r.stderr)
    assert not r.stderr.strip(), 'warnings rendering %s:\n%s' % (page,
                                                                 r.stderr)
    # strip overstrike (bold/underline) if the pager kept it
    return re.sub(r'.\x08', '', r.stdout)


def test_man_page_renders_and_documents_every_option(hfmount, tmp_path):
    text = _render(MAN)
    for part in ('HFMOUNT(1)', 'NAME', 'hfmount - mount Hugging Face',
                 'SYNOPSIS', 'hfmount prefetch', 'hfmount status',
                 'hfmount cache ls', 'EXIT STATUS', '/etc/fstab',
                 'HF_HUB_OFFLINE', 'user.hf.stats'):
        assert part in text, 'man hfmount lacks %r' % part
    helptext = util.run_cmd([hfmount, '--help']).stdout
    options = sorted(set(re.findall(r'(?<![\w-])--[a-z][a-z-]+', helptext)))
    assert len(options) > 8, options
    missing = [o for o in options if o not in text]
    assert not missing, 'options in --help but not in the man page: %r' % (
        missing)


def test_man_finds_the_installed_page(hfmount, tmp_path):
    if not shutil.which('man'):
        pytest.skip('man (man-db) is not installed: apt-get install man-db')
    prefix = tmp_path / 'prefix'
    r = util.run_cmd(['cmake', '--install', _build_dir(hfmount), '--prefix',
                      str(prefix)], timeout=INSTALL_TIMEOUT)
    assert r.returncode == 0, r.stderr
    env = dict(os.environ, MANPATH=str(prefix / 'share' / 'man'))
    r = util.run_cmd(['man', '-w', 'hfmount'], env=env)
    assert r.returncode == 0 and r.stdout.strip() == str(
        prefix / 'share' / 'man' / 'man1' / 'hfmount.1'), (r.stdout, r.stderr)


# --------------------------------------------------------------- fstab ---

def _mount_cmd(argv, env, mnt, timeout=util.MOUNT_TIMEOUT + 10):
    r = util.run_cmd(argv, timeout=timeout, env=env)
    assert r.returncode == 0, '%r exited %d: %s %s' % (argv, r.returncode,
                                                      r.stdout, r.stderr)
    assert util.is_mounted(mnt), '%r returned 0 but %s is not mounted' % (
        argv, mnt)
    return r


def _umount_and_check_exit(hfmount, mnt):
    pids = util.pids_with_arg(hfmount, mnt)
    assert len(pids) == 1, 'hfmount processes for %s: %r' % (mnt, pids)
    r = util.run_cmd(['umount', mnt])
    assert r.returncode == 0, 'umount %s: %s' % (mnt, r.stderr)
    assert not util.is_mounted(mnt)
    assert util.wait_pid_gone(pids[0], util.EXIT_TIMEOUT), (
        'hfmount %d still runs %s s after umount' % (pids[0],
                                                     util.EXIT_TIMEOUT))


@pytest.mark.parametrize('source, rel, rev', [
    ('hub', ('acme', 'tiny', 'config.json'), 'main'),
    ('hf', ('acme', 'tiny', 'config.json'), 'main'),
    ('acme/tiny@v1.0', ('config.json',), 'v1.0'),
])
def test_mount_fuse3_prog_source_form(hub, hfmount, tmp_path, source, rel,
                                      rev):
    """mount -t fuse3 'PROG#SOURCE' MNT -o hfmount-options: the form
    /etc/fstab lines use, run through mount.fuse3, options as key=value."""
    mnt = tmp_path / 'mnt'
    mnt.mkdir()
    mnt = os.path.realpath(str(mnt))
    cache, log = tmp_path / 'cache', tmp_path / 'hfmount.log'
    try:
        prog = os.path.realpath(hfmount)
        _mount_cmd(['mount', '-t', 'fuse3', '%s#%s' % (prog, source), mnt,
                    '-o', 'cache_dir=%s,log_file=%s,log_level=debug'
                    % (cache, log)], _env(hub, tmp_path), mnt)
        util.check_content(read_bytes(os.path.join(mnt, *rel)),
                           hub.files('model', 'acme/tiny', rev)['config.json'],
                           'config.json through mount.fuse3 (%s)' % source)
        assert util.mount_entry(mnt)['fstype'] == 'fuse.hfmount'
        _umount_and_check_exit(hfmount, mnt)
        assert 'mounted' in util.read_text(str(log)), (
            'log_file= was not used: %s is empty' % log)
        assert any(files for _, _, files in os.walk(str(cache))), (
            'cache_dir= was not used: %s holds no file' % cache)
        _sanitizer_check(tmp_path, log)
    finally:
        left = _reap(hfmount, mnt)
        assert not left, 'hfmount processes left behind: %r' % left


def test_fstab_file_line(hub, hfmount, tmp_path):
    """A real fstab file (mount --fstab FILE MNT) with a prog#source line."""
    mnt = tmp_path / 'mnt'
    mnt.mkdir()
    mnt = os.path.realpath(str(mnt))
    cache, log = tmp_path / 'cache', tmp_path / 'hfmount.log'
    fstab = tmp_path / 'fstab'
    fstab.write_text('# hfmount test\n%s#hub %s fuse3 cache_dir=%s,'
                     'log_file=%s,nofail 0 0\n' % (os.path.realpath(hfmount),
                                                  mnt, cache, log))
    try:
        _mount_cmd(['mount', '--fstab', str(fstab), mnt],
                   _env(hub, tmp_path), mnt)
        r = util.run_cmd(['jq', '-r', '.model_type',
                          os.path.join(mnt, 'acme', 'tiny', 'config.json')])
        want = hub.download('model', 'acme/tiny', 'main', 'config.json')
        assert r.returncode == 0 and r.stdout.strip() == \
            json.loads(want)['model_type'], r
        _umount_and_check_exit(hfmount, mnt)
        _sanitizer_check(tmp_path, log)
    finally:
        left = _reap(hfmount, mnt)
        assert not left, 'hfmount processes left behind: %r' % left


def _fake_install(hfmount, tmp_path):
    """tmp_path/bin/hfmount: a copy, so a rebuild of the binary under test
    while the test runs does not pull it away."""
    b = tmp_path / 'bin'
    b.mkdir(exist_ok=True)
    shutil.copy2(os.path.realpath(hfmount), str(b / 'hfmount'))
    return b


def test_fstab_fuse_hfmount_type_with_hfmount_on_the_standard_path(
        hub, hfmount, tmp_path):
    """The documented line, `hub MNT fuse.hfmount cache_dir=...,log_file=...`,
    through mount(8) and mount.fuse3, with hfmount in /usr/local/bin (bound
    there in a private mount namespace: mount(8) runs helpers without the
    caller's PATH)."""
    _fake_install(hfmount, tmp_path)
    mnt = tmp_path / 'mnt'
    mnt.mkdir()
    mnt = os.path.realpath(str(mnt))
    cache, log = tmp_path / 'cache', tmp_path / 'hfmount.log'
    fstab = tmp_path / 'fstab'
    fstab.write_text('hub %s fuse.hfmount cache_dir=%s,log_file=%s,'
                     'log_level=debug 0 0\n' % (mnt, cache, log))
    got = tmp_path / 'config.json'
    body = ('mount --fstab %(fstab)s %(mnt)s\n'
            'findmnt -n -o FSTYPE %(mnt)s\n'
            'cat %(mnt)s/acme/tiny/config.json > %(got)s\n'
            'umount %(mnt)s\n' % dict(fstab=shlex.quote(str(fstab)),
                                      mnt=shlex.quote(mnt),
                                      got=shlex.quote(str(got))))
    try:
        code, out = _run_ns(tmp_path, body, _env(hub, tmp_path))
        assert code == 0, 'fstab fuse.hfmount line failed (exit %d):\n%s\n' \
            '--- log:\n%s' % (code, out, util.tail(util.read_text(str(log))))
        assert 'fuse.hfmount' in out, out
        util.check_content(got.read_bytes(),
                           hub.files('model', 'acme/tiny')['config.json'],
                           'config.json through a fuse.hfmount fstab line')
        assert 'mounted' in util.read_text(str(log))
        assert not util.pids_with_arg('hfmount', mnt) or all(
            util.wait_pid_gone(p, util.EXIT_TIMEOUT)
            for p in util.pids_with_arg('hfmount', mnt)), (
            'hfmount still runs after umount in the namespace')
        _sanitizer_check(tmp_path, log)
    finally:
        for pid in util.pids_with_arg('hfmount', mnt):
            if not util.wait_pid_gone(pid, 1):
                os.kill(pid, signal.SIGKILL)


def _run_ns(tmp_path, body, env, timeout=60):
    if not shutil.which('unshare'):
        pytest.fail('unshare (util-linux) is missing', pytrace=False)
    script = 'set -e\nmount --bind %s /usr/local/bin\n%s' % (
        shlex.quote(str(tmp_path / 'bin')), body)
    out = tmp_path / 'ns.out'
    with open(out, 'wb') as o:
        p = subprocess.Popen(['unshare', '-m', '--propagation', 'private',
                              'sh', '-c', script], stdin=subprocess.DEVNULL,
                             stdout=o, stderr=subprocess.STDOUT, env=env,
                             start_new_session=True)
    try:
        code = p.wait(timeout)
    except subprocess.TimeoutExpired:
        os.killpg(p.pid, signal.SIGKILL)
        p.wait(util.EXIT_TIMEOUT)
        pytest.fail('namespace script did not finish within %s s:\n%s\n%s'
                    % (timeout, body, util.read_text(str(out))),
                    pytrace=False)
    return code, util.read_text(str(out))


# ------------------------------------------------------------- systemd ---

def _unit():
    sections, cur = {}, None
    with open(UNIT) as f:
        for line in f:
            line = line.strip()
            if not line or line.startswith(('#', ';')):
                continue
            if line.startswith('['):
                cur = sections.setdefault(line.strip('[]'), {})
                continue
            k, _, v = line.partition('=')
            cur.setdefault(k.strip(), []).append(v.strip())
    return sections


def test_systemd_unit_is_consistent():
    svc = _unit()['Service']
    start = shlex.split(svc['ExecStart'][0])
    assert start[0] == '/usr/local/bin/hfmount', (
        'ExecStart must name where `cmake --install` (prefix /usr/local) '
        'puts hfmount: %r' % start[0])
    typ = svc.get('Type', ['simple'])[0]
    fg = '-f' in start or '--foreground' in start
    assert (typ in ('simple', 'exec')) == fg, (
        'Type=%s with%s -f: systemd would %s' % (
            typ, '' if fg else 'out',
            'stop the mount as soon as hfmount daemonizes' if not fg
            else 'wait forever for a fork'))
    mnt = start[-1]
    stop = shlex.split(svc['ExecStop'][0])
    assert os.path.basename(stop[0]) == 'fusermount3' and stop[-1] == mnt \
        and '-u' in stop, 'ExecStop %r does not unmount %s' % (stop, mnt)
    assert os.path.exists(stop[0]), 'ExecStop names %s, missing' % stop[0]
    pre = [shlex.split(x) for x in svc.get('ExecStartPre', [])]
    assert any(p[-1] == mnt and 'mkdir' in p[0] for p in pre), (
        'no ExecStartPre creates the mountpoint %s' % mnt)
    for p in pre:
        assert os.path.exists(p[0].lstrip('-')), 'ExecStartPre names %s, ' \
            'missing' % p[0]


def test_systemd_analyze_verify(hfmount, tmp_path):
    if not shutil.which('systemd-analyze'):
        pytest.skip('systemd-analyze is not installed (Debian package '
                    'systemd); see docs/usage.md for the manual check')
    _fake_install(hfmount, tmp_path)
    code, out = _run_ns(tmp_path, 'systemd-analyze verify --man=no %s\n'
                        % shlex.quote(UNIT), dict(os.environ))
    assert code == 0 and not out.strip(), (
        'systemd-analyze verify %s (exit %d):\n%s' % (UNIT, code, out))


def test_systemd_unit_commands_work(hub, hfmount, tmp_path):
    """Runs the unit as systemd would (ExecStartPre, ExecStart in the
    foreground with the unit's Environment=, ExecStop), with its paths
    moved into tmp_path: the mount serves files and stops cleanly."""
    svc = _unit()['Service']
    mnt = os.path.realpath(str(tmp_path)) + '/mnt/hf'
    subst = [('/usr/local/bin/hfmount', hfmount), ('/mnt/hf', mnt),
             ('/var/cache/hfmount', str(tmp_path / 'cache')),
             ('/var/lib/hfmount', str(tmp_path / 'lib'))]

    def moved(s):
        for a, b in subst:
            s = s.replace(a, b)
        return s

    env = _env(hub, tmp_path)
    for e in svc.get('Environment', []):
        for kv in shlex.split(e):
            k, _, v = kv.partition('=')
            env[k] = moved(v)
    for pre in svc.get('ExecStartPre', []):
        r = util.run_cmd(shlex.split(moved(pre).lstrip('-')), env=env)
        assert r.returncode == 0, 'ExecStartPre %r: %s' % (pre, r.stderr)
    argv = shlex.split(moved(svc['ExecStart'][0]))
    m = util.Mount(argv, mnt, str(tmp_path / 'cache'), None, str(tmp_path),
                   env, 'unit')
    problems = []
    try:
        m.start()
        m.wait_ready()
        util.check_content(read_bytes(os.path.join(mnt, 'acme', 'tiny',
                                                   'config.json')),
                           hub.files('model', 'acme/tiny')['config.json'],
                           'config.json through the unit\'s mount')
        assert 'allow_other' in util.mount_entry(mnt)['superopts']
        stop = shlex.split(moved(svc['ExecStop'][0]))
        r = util.run_cmd(stop, env=env)
        assert r.returncode == 0, 'ExecStop %r: %s' % (stop, r.stderr)
        code = m.wait_exit()
        assert code == 0, 'hfmount exited %r after ExecStop (systemd wants ' \
            '0 for a clean stop)\n%s' % (code, m.diagnostics())
    finally:
        problems = m.cleanup()
    assert not problems, '\n'.join(problems)


# ------------------------------------------------------ mount failures ---

def _refused(argv, env, mnt=None, timeout=util.MOUNT_TIMEOUT):
    """Runs a mount that must fail; returns (code, stderr). Cleans up if it
    mounted after all."""
    p = subprocess.Popen(argv, stdin=subprocess.DEVNULL,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         env=env, start_new_session=True)
    try:
        out, err = p.communicate(timeout=timeout)
        code = p.returncode
    except subprocess.TimeoutExpired:
        os.killpg(p.pid, signal.SIGKILL)
        out, err = p.communicate(timeout=util.EXIT_TIMEOUT)
        code = None
    finally:
        if mnt and util.is_mounted(mnt) and code is None:
            util.fusermount_u(mnt, lazy=True)
    assert code is not None, '%r kept running (it mounted?)' % argv
    return code, err.decode('utf-8', 'replace')


@pytest.mark.parametrize('fg', [True, False], ids=['foreground', 'daemon'])
@pytest.mark.parametrize('kind, want', [
    ('missing', "cannot mount on '%s': No such file or directory"),
    ('file', "cannot mount on '%s': Not a directory"),
    ('nonempty', "cannot mount on '%s': not empty"),
])
def test_bad_mountpoint_exit_1_with_message(hub, hfmount, tmp_path, fg, kind,
                                            want):
    target = str(tmp_path / 'target')
    if kind == 'file':
        with open(target, 'w') as f:
            f.write('x')
    if kind == 'nonempty':
        os.mkdir(target)
        with open(os.path.join(target, 'local.txt'), 'w') as f:
            f.write('mine')
    argv = [hfmount] + (['-f'] if fg else []) + [
        '--cache-dir', str(tmp_path / 'c'), target]
    code, err = _refused(argv, _env(hub, tmp_path), target)
    assert code == 1, '%s mountpoint: exit %s, want 1 (%r)' % (kind, code,
                                                               err)
    assert want % target in err, '%s mountpoint: stderr %r, want %r' % (
        kind, err, want % target)
    assert not util.is_mounted(target), '%s mountpoint: mounted anyway' % kind
    if kind == 'nonempty':
        assert '-o nonempty' in err, 'the refusal names no way out: %r' % err
        with open(os.path.join(target, 'local.txt')) as f:
            assert f.read() == 'mine'


@pytest.mark.parametrize('fg', [True, False], ids=['foreground', 'daemon'])
def test_already_mounted_exit_1(mount, hub, hfmount, tmp_path, fg):
    m = mount()
    argv = [hfmount] + (['-f'] if fg else []) + [
        '--cache-dir', str(tmp_path / 'other-cache'), m.mnt]
    code, err = _refused(argv, _env(hub, tmp_path))
    assert code == 1, 'mount on a mount point: exit %s (%r)' % (code, err)
    assert 'already a mount point' in err and m.mnt in err, err
    assert m.mounted() and m.proc.poll() is None, 'the first mount was hurt'


@pytest.mark.parametrize('fg', [True, False], ids=['foreground', 'daemon'])
def test_no_dev_fuse_exit_1(hub, hfmount, tmp_path, fg):
    """/dev/fuse missing: in a private mount namespace, an empty tmpfs on
    /dev."""
    mnt = tmp_path / 'mnt'
    mnt.mkdir()
    mnt = os.path.realpath(str(mnt))
    cmd = ' '.join(shlex.quote(a) for a in [hfmount] + (['-f'] if fg else [])
                   + ['--cache-dir', str(tmp_path / 'c'), mnt])
    argv = ['unshare', '-m', '--propagation', 'private', 'sh', '-c',
            'mount -t tmpfs none /dev || exit 99; exec ' + cmd]
    try:
        code, err = _refused(argv, _env(hub, tmp_path))
        assert code != 99, 'could not hide /dev in a mount namespace: %s' % err
        assert code == 1, 'no /dev/fuse: exit %s, want 1 (%r)' % (code, err)
        assert 'cannot open /dev/fuse' in err, err
    finally:
        left = _reap(hfmount, mnt)
        assert not left, 'hfmount processes left behind: %r' % left


@pytest.mark.parametrize('fg', [True, False], ids=['foreground', 'daemon'])
def test_dev_fuse_not_a_fuse_device_exit_1_with_cause(hub, hfmount, tmp_path,
                                                      fg):
    """/dev/fuse replaced by an empty file (bind mount in a private mount
    namespace): it opens, the kernel refuses the mount (EINVAL). The
    message must still give the cause, in both modes."""
    mnt = tmp_path / 'mnt'
    mnt.mkdir()
    mnt = os.path.realpath(str(mnt))
    empty = tmp_path / 'empty'
    empty.write_bytes(b'')
    cmd = ' '.join(shlex.quote(a) for a in [hfmount] + (['-f'] if fg else [])
                   + ['--cache-dir', str(tmp_path / 'c'), mnt])
    argv = ['unshare', '-m', '--propagation', 'private', 'sh', '-c',
            'mount --bind %s /dev/fuse || exit 99; exec %s'
            % (shlex.quote(str(empty)), cmd)]
    try:
        code, err = _refused(argv, _env(hub, tmp_path))
        assert code != 99, 'could not bind over /dev/fuse: %s' % err
        assert code == 1, 'bad /dev/fuse: exit %s, want 1 (%r)' % (code, err)
        assert mnt in err, 'the message does not name %s: %r' % (mnt, err)
        assert 'Invalid argument' in err or '/dev/fuse' in err, (
            'the message gives no cause: %r' % err)
    finally:
        left = _reap(hfmount, mnt)
        assert not left, 'hfmount processes left behind: %r' % left


@pytest.mark.parametrize('args', [
    ['--no-such-option', 'MNT'],
    ['-f', 'acme/tiny', 'MNT', 'extra'],
    ['status'],
    ['prefetch'],
    ['cache', 'frobnicate'],
], ids=['unknown-option', 'extra-arg', 'status-no-arg', 'prefetch-no-arg',
        'cache-bad-verb'])
def test_bad_usage_exit_2(hub, hfmount, tmp_path, args):
    mnt = tmp_path / 'mnt'
    mnt.mkdir()
    argv = [hfmount] + [str(mnt) if a == 'MNT' else a for a in args]
    code, err = _refused(argv, _env(hub, tmp_path), str(mnt))
    assert code == 2, '%r: exit %s, want 2 (%r)' % (args, code, err)
    assert err.strip(), '%r: no message' % args


def test_non_empty_mountpoint_with_o_nonempty(hub, hfmount, tmp_path):
    """-o nonempty mounts over a non-empty directory (refused without it,
    test_bad_mountpoint_exit_1_with_message): the files under it are hidden
    while mounted and back after the unmount."""
    mnt = tmp_path / 'nonempty'
    mnt.mkdir()
    (mnt / 'local.txt').write_text('mine')
    mnt = os.path.realpath(str(mnt))
    cache, log = str(tmp_path / 'cache'), str(tmp_path / 'hfmount.log')
    m = util.Mount([hfmount, '-f', '-o', 'nonempty', '--cache-dir', cache,
                    '--log-file', log, mnt], mnt, cache, log, str(tmp_path),
                   _env(hub, tmp_path), 'nonempty')
    problems = []
    try:
        m.start()
        m.wait_ready()
        names = util.listdir(mnt)
        assert 'local.txt' not in names and 'datasets' in names, names
        assert m.unmount() == 0
    finally:
        problems = m.cleanup()
    assert not problems, '\n'.join(problems)
    with open(os.path.join(mnt, 'local.txt')) as f:
        assert f.read() == 'mine'
