"""Helpers for hfmount's end-to-end tests.

Shape after libfuse/sshfs test/util.py: wait for the mount or the daemon's
death, always unmount, terminate, kill. Every call that can block on the
mount, on a child process or on the fake Hub has a timeout, so a hung
hfmount fails a test instead of hanging pytest: filesystem calls run in a
daemon thread joined with a timeout (bounded()), child processes are waited
with a timeout, HTTP calls carry one.

Expected bytes come from the fake Hub's fixture (/_fake/fixture): regular
files are checked by git blob sha1 (the tree "oid"), LFS files by sha256.
"""
import errno
import hashlib
import json
import os
import re
import signal
import socket
import subprocess
import threading
import time
import urllib.error
import urllib.parse
import urllib.request

import pytest

REPO = os.path.realpath(os.path.join(os.path.dirname(__file__), '..', '..'))
FAKEHUB = os.path.join(REPO, 'tests', 'fakehub', 'fakehub.py')
PYTHON = '/usr/bin/python3'
FUSERMOUNT = 'fusermount3'

FS_TIMEOUT = 60          # one filesystem call on the mount
MOUNT_TIMEOUT = 20       # hfmount start until the mountpoint is mounted
EXIT_TIMEOUT = 10        # hfmount exit after unmount or a signal
HUB_START_TIMEOUT = 20   # fake Hub start until its port file exists
HTTP_TIMEOUT = 30        # one HTTP call to the fake Hub
CMD_TIMEOUT = 30         # one short command (--help, fusermount3 ...)
EIO_BOUND = 60           # "never a hang": failing calls end within this

SANITIZER_PATTERNS = ('AddressSanitizer', 'LeakSanitizer', 'runtime error')

TOKENS = {
    'alice': 'hf_alice_read_0123456789abcdef',
    'bob': 'hf_bob_read_0123456789abcdef01',
}

NO_CACHE_DIR = object()  # mount(cache_dir=NO_CACHE_DIR): omit --cache-dir


# ---------------------------------------------------------------- binary ---

def hfmount_bin():
    return os.environ.get('HFMOUNT_BIN') or os.path.join(REPO, 'build',
                                                          'hfmount')


def require_hfmount():
    """The hfmount binary, or fail (never skip) with how to build it."""
    path = hfmount_bin()
    if not (os.path.isfile(path) and os.access(path, os.X_OK)):
        pytest.fail('hfmount binary %r is missing or not executable: build '
                    'it with "cmake -S . -B build && cmake --build build -j2" '
                    'or point HFMOUNT_BIN at it' % path, pytrace=False)
    return path


def project_version():
    """VERSION from CMakeLists.txt's project() line."""
    with open(os.path.join(REPO, 'CMakeLists.txt')) as f:
        m = re.search(r'project\(\s*hfmount\s+VERSION\s+([0-9][0-9.]*)',
                      f.read())
    assert m, 'no project(hfmount VERSION x.y.z) in CMakeLists.txt'
    return m.group(1)


def clean_env(endpoint, hf_home):
    """The environment for hfmount: no HF_* from the caller (no real token
    is read), HF_ENDPOINT and HF_HOME set."""
    e = {k: v for k, v in os.environ.items()
         if not k.startswith(('HF_', 'HUGGING_FACE'))}
    e['HF_HOME'] = hf_home
    e['HF_ENDPOINT'] = endpoint
    return e


def run_cmd(argv, timeout=CMD_TIMEOUT, env=None, **kw):
    """subprocess.run with a timeout and text output; fails on timeout."""
    try:
        return subprocess.run(argv, stdin=subprocess.DEVNULL,
                              capture_output=True, text=True, errors='replace',
                              timeout=timeout, env=env, **kw)
    except subprocess.TimeoutExpired as e:
        pytest.fail('%r did not finish within %s s (stdout %r, stderr %r)'
                    % (argv, timeout, e.stdout, e.stderr))


# ------------------------------------------------------- bounded fs calls ---

def bounded(fn, *args, timeout=FS_TIMEOUT, what=None):
    """Runs fn(*args) in a daemon thread; returns its value or re-raises its
    exception; fails the test if it has not returned after timeout seconds.

    A thread stuck in a FUSE request is released when teardown unmounts or
    kills hfmount (the kernel then answers ENOTCONN)."""
    box = {}

    def run():
        try:
            box['value'] = fn(*args)
        except BaseException as e:  # handed to the caller below
            box['error'] = e

    label = what or '%s%r' % (getattr(fn, '__name__', 'call'), args)
    t = threading.Thread(target=run, name='bounded: ' + label, daemon=True)
    t.start()
    t.join(timeout)
    if t.is_alive():
        pytest.fail('%s did not return within %s s: the mount hangs'
                    % (label, timeout), pytrace=False)
    if 'error' in box:
        raise box['error']
    return box['value']


def _read_all(path):
    with open(path, 'rb') as f:
        return f.read()


def read_bytes(path, timeout=FS_TIMEOUT):
    return bounded(_read_all, path, timeout=timeout, what='read %r' % path)


def stat(path, timeout=FS_TIMEOUT):
    return bounded(os.stat, path, timeout=timeout, what='stat %r' % path)


def listdir(path, timeout=FS_TIMEOUT):
    return bounded(os.listdir, path, timeout=timeout,
                   what='listdir %r' % path)


def getxattr(path, name, timeout=FS_TIMEOUT):
    return bounded(os.getxattr, path, name, timeout=timeout,
                   what='getxattr %r %r' % (path, name))


def listxattr(path, timeout=FS_TIMEOUT):
    return bounded(os.listxattr, path, timeout=timeout,
                   what='listxattr %r' % path)


def open_fd(path, flags=os.O_RDONLY, timeout=FS_TIMEOUT):
    return bounded(os.open, path, flags, timeout=timeout,
                   what='open %r' % path)


def pread(fd, length, offset, timeout=FS_TIMEOUT):
    return bounded(os.pread, fd, length, offset, timeout=timeout,
                   what='pread(fd, %d, %d)' % (length, offset))


def close_fd(fd, timeout=FS_TIMEOUT):
    return bounded(os.close, fd, timeout=timeout, what='close')


def errname(e):
    return errno.errorcode.get(e, str(e)) if e is not None else 'success'


def expect_errno(expected, fn, *args, timeout=FS_TIMEOUT, what=None):
    """Calls fn(*args) bounded; asserts it raises OSError with exactly errno
    expected. Returns the elapsed seconds."""
    label = what or '%s%r' % (fn.__name__, args)
    t0 = time.monotonic()
    try:
        value = bounded(fn, *args, timeout=timeout, what=label)
    except OSError as e:
        assert e.errno == expected, (
            '%s: expected %s, got %s (%s)'
            % (label, errname(expected), errname(e.errno), e))
        return time.monotonic() - t0
    if fn is os.open and isinstance(value, int):
        os.close(value)
    pytest.fail('%s: expected %s, but it succeeded (returned %r)'
                % (label, errname(expected), value), pytrace=False)


def walk_files(top, timeout=FS_TIMEOUT):
    """Relative paths of every file under top, via bounded listdir/lstat."""
    out = []
    stack = ['']
    while stack:
        rel = stack.pop()
        for name in listdir(os.path.join(top, rel), timeout=timeout):
            child = rel + '/' + name if rel else name
            st = bounded(os.lstat, os.path.join(top, child), timeout=timeout,
                         what='lstat %r' % child)
            if (st.st_mode & 0o170000) == 0o040000:
                stack.append(child)
            else:
                out.append(child)
    return sorted(out)


# --------------------------------------------------------------- hashing ---

def git_blob_sha1(data):
    return hashlib.sha1(b'blob %d\0' % len(data) + data).hexdigest()


def sha256(data):
    return hashlib.sha256(data).hexdigest()


def expected_oid(info):
    """user.hf.oid of a fixture file: LFS sha256, else git blob sha1."""
    return info.get('sha256') or info['oid']


def check_content(data, info, what):
    """Asserts data is the fixture file info describes."""
    assert len(data) == info['size'], (
        '%s: read %d bytes, fixture size is %d' % (what, len(data),
                                                   info['size']))
    if info.get('sha256'):
        got = sha256(data)
        assert got == info['sha256'], (
            '%s: sha256 %s, fixture has %s' % (what, got, info['sha256']))
    else:
        got = git_blob_sha1(data)
        assert got == info['oid'], (
            '%s: git blob sha1 %s, fixture has %s' % (what, got, info['oid']))


# ------------------------------------------------------------ mountinfo ---

def _unescape_mountinfo(s):
    return re.sub(r'\\([0-7]{3})', lambda m: chr(int(m.group(1), 8)), s)


def mount_entry(real_path):
    """The last /proc/self/mountinfo entry whose mount point is real_path
    (already realpath'd: realpath would stat through a hung mount), as a
    dict (fstype, source, options, superopts), or None. Never touches the
    mount itself."""
    found = None
    with open('/proc/self/mountinfo') as f:
        for line in f:
            pre, _, post = line.rstrip('\n').partition(' - ')
            fields = pre.split(' ')
            if len(fields) < 6 or _unescape_mountinfo(fields[4]) != real_path:
                continue
            post_fields = post.split(' ')
            found = {
                'fstype': post_fields[0],
                'source': _unescape_mountinfo(post_fields[1]),
                'options': fields[5],
                'superopts': post_fields[2] if len(post_fields) > 2 else '',
            }
    return found


def is_mounted(real_path):
    e = mount_entry(real_path)
    return e is not None and e['fstype'].startswith('fuse')


def fusermount_u(real_path, lazy=False):
    argv = [FUSERMOUNT, '-u'] + (['-z'] if lazy else []) + [real_path]
    try:
        return subprocess.run(argv, stdin=subprocess.DEVNULL,
                              capture_output=True, text=True,
                              timeout=CMD_TIMEOUT)
    except subprocess.TimeoutExpired:
        return None


def closed_port():
    """A local TCP port nothing listens on (bound, then closed)."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.bind(('127.0.0.1', 0))
    port = s.getsockname()[1]
    s.close()
    return port


def pids_with_arg(exe, arg):
    """Pids whose argv[0] ends with basename(exe) and whose argv holds arg
    (zombies excluded)."""
    base = os.path.basename(exe)
    out = []
    for d in os.listdir('/proc'):
        if not d.isdigit():
            continue
        try:
            with open('/proc/%s/cmdline' % d, 'rb') as f:
                argv = f.read().split(b'\0')
        except OSError:
            continue
        argv = [a.decode('utf-8', 'replace') for a in argv if a]
        if argv and os.path.basename(argv[0]) == base and arg in argv[1:]:
            if not pid_gone(int(d)):
                out.append(int(d))
    return out


def pid_gone(pid):
    """True if pid has exited (absent, or a zombie nobody reaped)."""
    try:
        with open('/proc/%d/stat' % pid) as f:
            st = f.read()
    except OSError:
        return True
    return st[st.rindex(')') + 2] in 'ZX'


def wait_pid_gone(pid, timeout):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pid_gone(pid):
            return True
        time.sleep(0.05)
    return pid_gone(pid)


def read_text(path):
    try:
        with open(path, 'r', errors='replace') as f:
            return f.read()
    except OSError:
        return ''


def sanitizer_lines(text):
    return [l for l in text.splitlines()
            if any(p in l for p in SANITIZER_PATTERNS)]


def sanitizer_report(text, context=40):
    """The first sanitizer report in text with the lines after it (the
    stacks), or '' if none."""
    lines = text.splitlines()
    for i, l in enumerate(lines):
        if any(p in l for p in SANITIZER_PATTERNS):
            return '\n'.join(lines[i:i + context])
    return ''


def tail(text, n=60):
    lines = text.splitlines()
    return '\n'.join(lines[-n:]) if lines else '(empty)'


# ------------------------------------------------------------- requests ---

_REPO_API = r'/api/(models|datasets|spaces)/[^/]+/[^/]+'


def classify(row):
    """Kind of one /_fake/requests row: cdn, resolve-cache, resolve, tree,
    paths-info, revision (repo info with or without /revision/), list
    (GET /api/models?author=...), whoami, other."""
    path = row.get('path') or ''
    if row.get('origin') == 'cdn':
        return 'cdn'
    if path.startswith('/api/resolve-cache/'):
        return 'resolve-cache'
    if '/resolve/' in path and not path.startswith('/api/'):
        return 'resolve'
    if re.match(_REPO_API + r'/tree/', path):
        return 'tree'
    if re.match(_REPO_API + r'/paths-info/', path):
        return 'paths-info'
    if re.match(_REPO_API + r'(/revision/.+)?/?$', path):
        return 'revision'
    if re.match(r'/api/(models|datasets|spaces)/?$', path):
        return 'list'
    if path.startswith('/api/whoami'):
        return 'whoami'
    return 'other'


def query_dict(row):
    q = row.get('query')
    if isinstance(q, dict):
        return {k: (v if isinstance(v, list) else [v]) for k, v in q.items()}
    return urllib.parse.parse_qs(q or '', keep_blank_values=True)


def tree_target(row):
    """(rev, dir) of a tree row: dir '' for the root, percent-decoded."""
    m = re.match(_REPO_API + r'/tree/([^/]+)/?(.*)$', row['path'])
    assert m, 'not a tree row: %r' % row
    return (urllib.parse.unquote(m.group(2)),
            urllib.parse.unquote(m.group(3)).strip('/'))


def is_recursive(row):
    return any(v.lower() in ('true', '1')
               for v in query_dict(row).get('recursive', []))


def fmt_rows(rows):
    if not rows:
        return '  (none)'
    return '\n'.join('  %-13s %s %s %s%s -> %s%s' % (
        classify(r), r.get('origin'), r.get('method'), r.get('path'),
        ('?' + r['query']) if isinstance(r.get('query'), str) and r['query']
        else '', r.get('status'),
        ' range=%s' % r['range'] if r.get('range') else '') for r in rows)


def count_kinds(rows):
    out = {}
    for r in rows:
        k = classify(r)
        out[k] = out.get(k, 0) + 1
    return out


# -------------------------------------------------------------- fake Hub ---

def _parse_date(value):
    if isinstance(value, (int, float)):
        return int(value)
    s = value.replace('Z', '+00:00')
    from datetime import datetime
    return int(datetime.fromisoformat(s).timestamp())


class FakeHub:
    """tests/fakehub/fakehub.py as a child process plus a client of its
    control API (/_fake/...) and of its fixture."""

    def __init__(self, workdir, extra_args=()):
        self.workdir = workdir
        self.extra_args = list(extra_args)  # e.g. ['--repo', 'acme/llm=DIR']
        self.port_file = os.path.join(workdir, 'fakehub-ports.json')
        self.stderr_path = os.path.join(workdir, 'fakehub.stderr')
        self.proc = None
        self.api = self.cdn = None
        self._fixture = None
        self._blobs = {}

    # process
    def start(self):
        if not os.path.isfile(FAKEHUB):
            pytest.fail('fake Hub %s is missing' % FAKEHUB, pytrace=False)
        err = open(self.stderr_path, 'wb')
        self.proc = subprocess.Popen(
            [PYTHON, FAKEHUB, '--port-file', self.port_file, '--quiet'] +
            self.extra_args,
            cwd=REPO, stdin=subprocess.DEVNULL, stdout=err, stderr=err,
            start_new_session=True)
        err.close()
        deadline = time.monotonic() + HUB_START_TIMEOUT
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                pytest.fail('fake Hub exited with status %s before writing '
                            '%s:\n%s' % (self.proc.returncode, self.port_file,
                                         tail(read_text(self.stderr_path))),
                            pytrace=False)
            try:
                with open(self.port_file) as f:
                    ports = json.load(f)
                self.api = ports['api'].rstrip('/')
                self.cdn = ports['cdn'].rstrip('/')
                return
            except (OSError, ValueError, KeyError):
                time.sleep(0.05)
        self.stop()
        pytest.fail('fake Hub did not write %s within %s s:\n%s'
                    % (self.port_file, HUB_START_TIMEOUT,
                       tail(read_text(self.stderr_path))), pytrace=False)

    def stop(self):
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.terminate()
        try:
            self.proc.wait(EXIT_TIMEOUT)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(EXIT_TIMEOUT)

    def stderr_text(self):
        return read_text(self.stderr_path)

    # control API
    def _call(self, method, path, body=None):
        data = None
        headers = {}
        if body is not None:
            data = json.dumps(body).encode()
            headers['Content-Type'] = 'application/json'
        req = urllib.request.Request(self.api + path, data=data,
                                     method=method, headers=headers)
        try:
            with urllib.request.urlopen(req, timeout=HTTP_TIMEOUT) as r:
                raw = r.read()
        except urllib.error.HTTPError as e:
            raise AssertionError('fake Hub control call %s %s %r failed: %s '
                                 '%s' % (method, path, body, e.code,
                                         e.read()[:500])) from None
        return json.loads(raw) if raw.strip() else None

    def requests(self):
        return self._call('GET', '/_fake/requests')

    def reset(self):
        return self._call('POST', '/_fake/reset', {})

    def branch(self, repo, branch, commit=None, to_ref=None, type='model'):
        body = {'type': type, 'repo': repo, 'branch': branch}
        if commit is not None:
            body['commit'] = commit
        if to_ref is not None:
            body['to_ref'] = to_ref
        return self._call('POST', '/_fake/branch', body)

    def fault(self, match, action='status', origin='any', count=1, **extra):
        body = dict(match=match, origin=origin, count=count, action=action)
        body.update(extra)
        return self._call('POST', '/_fake/fault', body)

    def settings(self, **kw):
        return self._call('POST', '/_fake/settings', kw)

    def expire(self):
        return self._call('POST', '/_fake/expire', {})

    def grant(self, repo, user, revoke=False):
        body = {'repo': repo, 'user': user}
        if revoke:
            body['revoke'] = True
        return self._call('POST', '/_fake/grant', body)

    def token(self, token, **props):
        body = {'token': token}
        body.update(props)
        return self._call('POST', '/_fake/token', body)

    # fixture
    def fixture(self):
        if self._fixture is None:
            self._fixture = self._call('GET', '/_fake/fixture')
        return self._fixture

    def repo(self, type, id):
        for r in self.fixture()['repos']:
            if r['type'] == type and r['id'] == id:
                return r
        raise AssertionError('no %s %s in /_fake/fixture' % (type, id))

    def commit(self, type, id, rev='main'):
        """Fixture commit sha a revision names (branch at fixture time)."""
        r = self.repo(type, id)
        rev = urllib.parse.unquote(rev)
        if rev in r['commits']:
            return rev
        assert rev in r['refs'], ('%s %s has no ref %r in the fixture (refs: '
                                  '%s)' % (type, id, rev, sorted(r['refs'])))
        return r['refs'][rev]

    def files(self, type, id, rev='main'):
        """{path: {size, oid, sha256}} of every file at rev."""
        r = self.repo(type, id)
        return r['commits'][self.commit(type, id, rev)]['files']

    def date(self, type, id, rev='main'):
        r = self.repo(type, id)
        return _parse_date(r['commits'][self.commit(type, id, rev)]['date'])

    def dirs(self, type, id, rev='main'):
        """Every directory path at rev ('' is the root)."""
        out = {''}
        for p in self.files(type, id, rev):
            parts = p.split('/')
            for i in range(1, len(parts)):
                out.add('/'.join(parts[:i]))
        return out

    def children(self, type, id, rev='main', d=''):
        """Names directly under directory d at rev."""
        prefix = d + '/' if d else ''
        out = set()
        for p in self.files(type, id, rev):
            if p.startswith(prefix):
                out.add(p[len(prefix):].split('/')[0])
        return sorted(out)

    # content over HTTP (for range checks; recorded in /_fake/requests)
    def resolve_url(self, type, id, rev, path):
        prefix = {'model': '', 'dataset': 'datasets/', 'space': 'spaces/'}
        return '%s/%s%s/resolve/%s/%s' % (
            self.api, prefix[type], id, urllib.parse.quote(rev, safe=''),
            urllib.parse.quote(path, safe='/'))

    def download(self, type, id, rev, path):
        """A file's bytes fetched from the fake Hub (resolve, following
        redirects), checked against the fixture; cached."""
        key = (type, id, self.commit(type, id, rev), path)
        if key not in self._blobs:
            url = self.resolve_url(type, id, key[2], path)
            with urllib.request.urlopen(url, timeout=HTTP_TIMEOUT) as r:
                data = r.read()
            check_content(data, self.files(type, id, rev)[path],
                          'fake Hub download of %s' % url)
            self._blobs[key] = data
        return self._blobs[key]

    def info(self, type, id, rev=None):
        """GET /api/{type}s/{id}[/revision/{rev}] as JSON (recorded)."""
        url = '%s/api/%ss/%s' % (self.api, type, id)
        if rev is not None:
            url += '/revision/' + urllib.parse.quote(rev, safe='')
        with urllib.request.urlopen(url, timeout=HTTP_TIMEOUT) as r:
            return json.loads(r.read())


# ----------------------------------------------------------------- mount ---

class Mount:
    """One hfmount process and its mountpoint."""

    def __init__(self, argv, mnt, cache_dir, log_path, workdir, env, name):
        self.argv = argv
        self.mnt = mnt                      # realpath'd before mounting
        self.cache_dir = cache_dir
        self.log_path = log_path
        self.stdout_path = os.path.join(workdir, name + '.stdout')
        self.stderr_path = os.path.join(workdir, name + '.stderr')
        self.env = env
        self.proc = None
        self.killed = False   # a test sent a signal that may end it uncleanly
        self.forced = False   # teardown had to terminate or kill it
        self.lazy = False     # fusermount3 -u failed, -uz was used
        self.ready = False    # it mounted (wait_ready returned)

    def start(self):
        with open(self.stdout_path, 'wb') as out, \
                open(self.stderr_path, 'wb') as err:
            self.proc = subprocess.Popen(self.argv, stdin=subprocess.DEVNULL,
                                         stdout=out, stderr=err, env=self.env,
                                         start_new_session=True)

    def wait_ready(self, timeout=MOUNT_TIMEOUT):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                pytest.fail('hfmount exited with status %s before mounting '
                            '%s\n%s' % (self.proc.returncode, self.mnt,
                                        self.diagnostics()), pytrace=False)
            if is_mounted(self.mnt):
                self.ready = True
                return
            time.sleep(0.05)
        pytest.fail('%s not mounted within %s s\n%s'
                    % (self.mnt, timeout, self.diagnostics()), pytrace=False)

    def path(self, *parts):
        return os.path.join(self.mnt, *parts)

    def log_text(self):
        return read_text(self.log_path) if self.log_path else ''

    def stderr_text(self):
        return read_text(self.stderr_path)

    def diagnostics(self):
        return ('argv: %s\n--- log %s:\n%s\n--- stderr:\n%s'
                % (' '.join(self.argv), self.log_path, tail(self.log_text()),
                   tail(self.stderr_text())))

    def mounted(self):
        return is_mounted(self.mnt)

    def signal(self, sig):
        self.killed = sig not in (signal.SIGTERM, signal.SIGINT)
        self.proc.send_signal(sig)

    def wait_exit(self, timeout=EXIT_TIMEOUT):
        """Exit status, or None if still running after timeout."""
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            return None

    def unmount(self):
        """fusermount3 -u (-uz if busy), then waits for the exit; terminates
        and kills if needed. Returns the exit status."""
        if self.mounted():
            r = fusermount_u(self.mnt)
            if r is None or r.returncode != 0:
                self.lazy = True
                fusermount_u(self.mnt, lazy=True)
        code = self.wait_exit()
        if code is None:
            self.forced = True
            self.proc.terminate()
            code = self.wait_exit(5)
            if code is None:
                self.proc.kill()
                code = self.wait_exit(5)
        if self.mounted():  # it died without unmounting
            fusermount_u(self.mnt, lazy=True)
        return code

    def cleanup(self):
        """Teardown: unmount and reap; returns a list of problems."""
        problems = []
        if self.proc is None:
            return problems
        exited_early = self.proc.poll() is not None
        was_mounted = self.mounted()
        code = self.unmount()
        if self.ready and not self.killed:
            if exited_early and was_mounted:
                problems.append('hfmount exited (status %s) but %s stayed '
                                'mounted' % (code, self.mnt))
            if self.lazy:
                problems.append('fusermount3 -u %s failed (busy?); used -uz'
                                % self.mnt)
            if self.forced:
                problems.append('hfmount did not exit within %s s of '
                                'fusermount3 -u; terminated' % EXIT_TIMEOUT)
            elif code != 0:
                problems.append('hfmount exited with status %s after a clean '
                                'unmount (expected 0)' % code)
        text = self.log_text() + '\n' + self.stderr_text()
        if sanitizer_lines(text):
            problems.append('sanitizer report:\n' + sanitizer_report(text))
        if problems:
            problems.append(self.diagnostics())
        return problems
