"""README.md's "Five-minute tour", run as written, so it never goes stale.

The tour is one ```console block: lines starting with "$ " are commands,
the lines under each are its output. The tour's commands use HF_ENDPOINT,
MNT and CACHE, which the README sets in a ```sh block above it (MNT=/tmp/hf,
CACHE=/tmp/hf-cache); here they point at the session's fake Hub and at
fresh temporary directories, and `hfmount` on PATH is the binary under test.

Each command runs in order with `bash -o pipefail -c`, with a timeout, and
must exit 0. Each non-blank line of its README output must appear in what it
printed (stdout and stderr), after the README's /tmp/hf and /tmp/hf-cache
are replaced by the real paths. Lines that change from run to run (transfer
rates, ETAs, `hfmount status` counters) are compared by their shape: the
words, with every number and size replaced by '#'.

The tour must end unmounted; the test unmounts and kills what is left even
when a command fails. The ```sh set-up block is run too (its own fake Hub,
stopped afterwards).
"""
import os
import re
import shutil
import signal
import subprocess

import pytest

import util

README = os.path.join(util.REPO, 'README.md')
TOUR_HEADING = '## Five-minute tour'
README_MNT = '/tmp/hf'
README_CACHE = '/tmp/hf-cache'
README_PORTS = '/tmp/hub.json'
CMD_TIMEOUT = 120


# -------------------------------------------------------------- parsing ---

def readme():
    with open(README) as f:
        return f.read()


def tour_section(text=None):
    text = text if text is not None else readme()
    start = text.find('\n' + TOUR_HEADING)
    assert start >= 0, 'README.md has no %r section' % TOUR_HEADING
    end = text.find('\n## ', start + 1)
    return text[start:end if end >= 0 else len(text)]


def fenced(section, lang):
    """Contents of the first ```lang block of section, as lines."""
    m = re.search(r'^```%s\n(.*?)^```$' % re.escape(lang), section,
                  re.M | re.S)
    assert m, 'the tour has no ```%s block' % lang
    return m.group(1).splitlines()


def tour_steps(section=None):
    """[(command, [expected output lines])] of the ```console block."""
    steps = []
    for line in fenced(section or tour_section(), 'console'):
        if line.startswith('$ '):
            assert not line.endswith('\\'), (
                'tour command continued on the next line: %r' % line)
            steps.append((line[2:], []))
        else:
            assert steps, 'output before the first command: %r' % line
            steps[-1][1].append(line)
    return steps


_SIZE = r'\d+(?:\.\d+)?(?: ?(?:B|KiB|MiB|GiB|TiB)(?:/s)?)?'


def volatile(line):
    """Lines that change from run to run: rates, ETAs, status counters."""
    return bool(re.search(r'/s\b|\bETA\b', line)
                or re.match(r'^[a-z_]+ {2,}\d', line))


def shape(line):
    return ' '.join(re.sub(_SIZE, '#', line).split())


# ------------------------------------------------------------ structure ---

def test_tour_follows_set_up_and_usage():
    text = readme()
    heads = re.findall(r'^## .*$', text, re.M)
    names = heads
    assert TOUR_HEADING in names, heads
    i = names.index(TOUR_HEADING)
    assert any(h.startswith('## Set-up') for h in names[:i]), (
        'the set-up commands must come before the tour: %r' % heads)
    assert any(h.startswith('## Usage') for h in names[:i]), heads
    steps = tour_steps()
    cmds = [c for c, _ in steps]
    assert len(cmds) >= 15, 'a short tour: %r' % cmds
    for tool in ('jq', 'sha256sum', 'tar', 'find', 'numpy', 'getfattr',
                 'hfmount status', 'hfmount prefetch', 'hfmount cache ls',
                 'HF_HUB_OFFLINE=1'):
        assert any(tool in c for c in cmds), 'the tour never uses %r' % tool
    mounts = [i for i, c in enumerate(cmds)
              if re.match(r'^(\w+=\S+ )*hfmount (?!status|cache|prefetch)', c)]
    unmounts = [i for i, c in enumerate(cmds)
                if c.startswith('fusermount3 -u')]
    assert mounts and unmounts and unmounts[-1] > mounts[-1], (
        'the tour must unmount at its end: %r' % cmds)
    for var in ('$MNT', '$CACHE'):
        assert any(var in c for c in cmds), cmds
    for c in cmds:
        assert README_MNT not in c and README_CACHE not in c, (
            'a tour command names a fixed path instead of $MNT/$CACHE: %r'
            % c)


# ------------------------------------------------------------- the tour ---

def _expect(lines, mnt, cache):
    out = []
    for line in lines:
        if not line.strip():
            continue
        out.append(line.replace(README_CACHE, cache).replace(README_MNT, mnt))
    return out


def _leftovers(hfmount, mnt):
    """Unmounts mnt and kills hfmount processes naming it; returns what had
    to be done."""
    done = []
    if util.is_mounted(mnt):
        done.append('%s was still mounted' % mnt)
        r = util.fusermount_u(mnt)
        if r is None or r.returncode != 0:
            util.fusermount_u(mnt, lazy=True)
    for pid in util.pids_with_arg('hfmount', mnt):  # argv[0] is 'hfmount'
        if not util.wait_pid_gone(pid, util.EXIT_TIMEOUT):
            done.append('hfmount pid %d still ran' % pid)
            os.kill(pid, signal.SIGKILL)
    return done


def _run_step(cmd, env, cwd, out_path):
    with open(out_path, 'wb') as out:
        p = subprocess.Popen(['bash', '-o', 'pipefail', '-c', cmd],
                             stdin=subprocess.DEVNULL, stdout=out,
                             stderr=subprocess.STDOUT, env=env, cwd=cwd,
                             start_new_session=True)
    try:
        code = p.wait(CMD_TIMEOUT)
    except subprocess.TimeoutExpired:
        try:
            os.killpg(p.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        p.wait(util.EXIT_TIMEOUT)
        code = None
    return code, util.read_text(out_path)


def test_readme_tour_runs_as_written(hub, hfmount, tmp_path):
    steps = tour_steps()
    mnt = tmp_path / 'hf'
    mnt.mkdir()
    mnt = os.path.realpath(str(mnt))
    cache = os.path.realpath(str(tmp_path)) + '/hf-cache'
    bindir = tmp_path / 'bin'
    bindir.mkdir()
    # a copy: a rebuild of the binary during the tour cannot pull it away
    shutil.copy2(os.path.realpath(hfmount), str(bindir / 'hfmount'))
    home = tmp_path / 'hf_home'
    home.mkdir()
    env = util.clean_env(hub.api, str(home))
    env.update(MNT=mnt, CACHE=cache,
               PATH=str(bindir) + os.pathsep + env.get('PATH', ''))
    # The daemon's stderr is /dev/null: sanitizer reports go to files.
    for var in ('ASAN_OPTIONS', 'UBSAN_OPTIONS'):
        env[var] = ':'.join(filter(None, [env.get(var), 'log_path=%s' % (
            tmp_path / 'sanitizer')]))

    transcript = []
    try:
        for n, (cmd, lines) in enumerate(steps, 1):
            code, out = _run_step(cmd, env, str(tmp_path),
                                  str(tmp_path / ('step%02d.out' % n)))
            transcript.append('$ %s\n%s[exit %s]' % (cmd, out, code))
            where = 'tour step %d: $ %s\n--- output:\n%s' % (n, cmd, out)
            assert code is not None, 'timed out after %s s; %s' % (
                CMD_TIMEOUT, where)
            assert code == 0, 'exit %d; %s' % (code, where)
            got = [l.rstrip() for l in out.splitlines()]
            got_shapes = {shape(l) for l in got}
            for want in _expect(lines, mnt, cache):
                want = want.rstrip()
                if volatile(want):
                    assert shape(want) in got_shapes, (
                        'no line shaped like %r (%r); %s'
                        % (want, shape(want), where))
                else:
                    assert want in got, 'README line %r missing; %s' % (
                        want, where)
        assert not util.is_mounted(mnt), 'the tour left %s mounted' % mnt
    except AssertionError as e:
        raise AssertionError('%s\n--- transcript so far:\n%s'
                             % (e, '\n'.join(transcript))) from None
    finally:
        left = _leftovers(hfmount, mnt)
    assert not left, 'after the tour: %s' % '; '.join(left)
    text = ''.join(util.read_text(str(f)) for f in tmp_path.glob('sanitizer*'))
    assert not util.sanitizer_lines(text), util.sanitizer_report(text)


def test_readme_tour_set_up_block_works(hfmount, tmp_path):
    """The ```sh block (fake Hub, HF_ENDPOINT, MNT, CACHE, PATH), with its
    /tmp paths moved into tmp_path: it starts a fake Hub that answers, puts
    build/hfmount on PATH and makes MNT."""
    built = os.path.join(util.REPO, 'build', 'hfmount')
    if not os.access(built, os.X_OK):
        pytest.fail('%s is missing: the set-up block puts $PWD/build on PATH;'
                    ' run scripts/build.sh' % built, pytrace=False)
    lines = fenced(tour_section(), 'sh')
    setup = '\n'.join(lines)
    for path in (README_PORTS, README_MNT, README_CACHE):
        assert path in setup, 'the set-up block does not use %s' % path
    ports = str(tmp_path / 'hub.json')
    mnt = str(tmp_path / 'hf')
    cache = str(tmp_path / 'hf-cache')
    setup = (setup.replace(README_PORTS, ports)
             .replace(README_CACHE, cache).replace(README_MNT, mnt))
    check = '\n'.join([
        'echo "FAKEHUB_PID=$!"',
        'echo "ENDPOINT=$HF_ENDPOINT"',
        'echo "HFMOUNT=$(command -v hfmount)"',
        'test -d "$MNT"',
        'hfmount prefetch --cache-dir "$CACHE" acme/tiny config.json',
        'hfmount cache ls --cache-dir "$CACHE"',
        'kill $!',
    ])
    script = 'set -e\n%s\n%s\n' % (setup, check)
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(('HF_', 'HUGGING_FACE'))}
    env['HF_HOME'] = str(tmp_path / 'hf_home')
    out_path = str(tmp_path / 'setup.out')
    with open(out_path, 'wb') as out:
        p = subprocess.Popen(['bash', '-c', script], cwd=util.REPO,
                             stdin=subprocess.DEVNULL, stdout=out,
                             stderr=subprocess.STDOUT, env=env,
                             start_new_session=True)
    try:
        try:
            code = p.wait(60)
        except subprocess.TimeoutExpired:
            code = None
        out = util.read_text(out_path)
        assert code == 0, 'set-up block exited %s:\n%s\n--- output:\n%s' % (
            code, script, out)
        assert re.search(r'^ENDPOINT=http://127\.0\.0\.1:\d+$', out, re.M), out
        assert ('HFMOUNT=%s' % built) in out.splitlines(), out
        assert 'acme/tiny: config.json' in out, out
    finally:
        out = util.read_text(out_path)
        m = re.search(r'^FAKEHUB_PID=(\d+)$', out, re.M)
        pids = [int(m.group(1))] if m else []
        for pid in pids:
            if not util.wait_pid_gone(pid, util.EXIT_TIMEOUT):
                os.kill(pid, signal.SIGKILL)
        try:
            os.killpg(p.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        if p.poll() is None:
            p.wait(util.EXIT_TIMEOUT)
    for pid in pids:
        assert util.wait_pid_gone(pid, util.EXIT_TIMEOUT), (
            'the fake Hub of the set-up block (pid %d) still runs' % pid)


def test_shape_and_volatile():
    """The comparison rules themselves."""
    assert volatile('requests             34')
    assert volatile('prefetch: 288 B of 1.2 KiB, 78.9 KiB/s, ETA 0s')
    assert not volatile('offline              no')
    assert not volatile('4999f10d6c66  /tmp/hf/acme/tiny/model.safetensors')
    assert shape('prefetch: 288 B of 1.2 KiB, 78.9 KiB/s, ETA 0s') == \
        shape('prefetch: 1.0 MiB of 1.2 MiB, 3.4 GiB/s, ETA 12s')
    assert shape('bytes_fetched        17006593 (16.2 MiB)') == \
        shape('bytes_fetched 5 (5 B)')
