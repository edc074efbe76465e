"""Helpers shared by the cache, fault, hostile-input, concurrency and
process-life tests (test_cache.py, test_faults.py, test_hostile.py,
test_concurrency.py, test_process.py).

Everything that can block has a timeout: filesystem calls go through
util.bounded(), threads are joined with a timeout, child processes are
waited with one. Mounts started here (on a mountpoint a killed hfmount left
stale) are unmounted by own_mount() however the test ends.
"""
import contextlib
import os
import re
import subprocess
import threading
import time
import urllib.parse

import pytest

import util

MODEL = ('model', 'acme/tiny')
LFS = 'model.safetensors'            # 16,793,792 bytes: 5 chunks
CHUNK = 4 * 1024 * 1024              # cache/cache.h CACHE_CHUNK_SIZE
CHUNK_HDR = 4096                     # cache/cache_format.h CACHE_FMT_DATA_OFF
CHUNK_FILE = CHUNK + CHUNK_HDR       # bytes of one full chunk file
FAIL_BOUND = 20   # s: EIO with --retries 2-3 must come well within this
PROMPT = 5        # s: "a few seconds"


# ------------------------------------------------------------- requests ---

def range_of(row):
    """(first, last) of a row's Range header, or None."""
    m = re.match(r'bytes=(\d+)-(\d+)$', row.get('range') or '')
    return (int(m.group(1)), int(m.group(2))) if m else None


def chunk_range(idx, size):
    first = idx * CHUNK
    return first, min(size, first + CHUNK) - 1


def rows_for(rows, name, kind=None):
    """Rows whose path or query names name (a CDN URL names its file only
    in the query), optionally of one util.classify() kind."""
    out = []
    for r in rows:
        if kind and util.classify(r) != kind:
            continue
        q = r.get('query')
        q = q if isinstance(q, str) else ''
        if name in r.get('path', '') or name in q or \
                name in urllib.parse.unquote(q):
            out.append(r)
    return out


def cdn_rows(rows, name=LFS):
    return rows_for(rows, name, 'cdn')


def merge(spans):
    """[(first, last)] sorted and merged where they touch or overlap."""
    out = []
    for a, b in sorted(spans):
        if out and a <= out[-1][1] + 1:
            out[-1] = (out[-1][0], max(out[-1][1], b))
        else:
            out.append((a, b))
    return out


def by_range(rows):
    """{(first, last): [status, ...]} of rows carrying a Range."""
    out = {}
    for r in rows:
        rg = range_of(r)
        if rg:
            out.setdefault(rg, []).append(r['status'])
    return out


def settle(hub, quiet=1.0, timeout=15):
    """The request log once it has not grown for quiet seconds. With the
    fake Hub's delay setting a row lands only after the delay, so a test
    that used it waits here: its late rows would else show up in the next
    test's log."""
    rows = hub.requests()
    deadline = time.monotonic() + timeout
    last = time.monotonic()
    while time.monotonic() < deadline:
        time.sleep(0.1)
        now = hub.requests()
        if len(now) != len(rows):
            rows, last = now, time.monotonic()
        elif time.monotonic() - last >= quiet:
            return rows
    pytest.fail('the request log kept growing for %s s' % timeout,
                pytrace=False)


# ----------------------------------------------------------- cache dir ---

def chunk_files(cache_dir, key=None):
    """{(key, idx): path} of the chunk files under CACHE_DIR/chunks
    (temporary files excluded)."""
    out = {}
    top = os.path.join(cache_dir, 'chunks')
    for dirpath, _, names in os.walk(top):
        for n in names:
            if '.tmp' in n:
                continue
            k, _, idx = n.rpartition('.')
            if not idx.isdigit() or (key and k != key):
                continue
            out[(k, int(idx))] = os.path.join(dirpath, n)
    return out


def temp_files(cache_dir):
    out = []
    for dirpath, _, names in os.walk(cache_dir):
        out += [os.path.join(dirpath, n) for n in names if '.tmp' in n]
    return out


def meta_files(cache_dir):
    out = []
    for dirpath, _, names in os.walk(os.path.join(cache_dir, 'meta')):
        out += [os.path.join(dirpath, n) for n in names if '.tmp' not in n]
    return sorted(out)


def dir_bytes(top):
    """Sum of what the regular files under top take, as `du` counts a
    sparse file (a partly stored chunk file): its size or its allocated
    blocks, whichever is less (a file vanishing under us, as eviction does,
    counts 0)."""
    total = 0
    for dirpath, _, names in os.walk(top):
        for n in names:
            try:
                st = os.lstat(os.path.join(dirpath, n))
            except OSError:
                continue
            total += min(st.st_size, st.st_blocks * 512)
    return total


class DirSampler:
    """Samples dir_bytes(top) every period seconds in a thread, as `du`
    would, while a test reads; .max is the largest sample."""

    def __init__(self, top, period=0.005):
        self.top = top
        self.period = period
        self.samples = []
        self._stop = threading.Event()
        self._t = threading.Thread(target=self._run, daemon=True,
                                   name='du ' + top)

    def _run(self):
        while not self._stop.is_set():
            self.samples.append(dir_bytes(self.top))
            self._stop.wait(self.period)

    @property
    def max(self):
        return max(self.samples) if self.samples else 0

    def __enter__(self):
        self._t.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._t.join(10)
        self.samples.append(dir_bytes(self.top))


# ---------------------------------------------------------------- tmpfs ---

@contextlib.contextmanager
def tmpfs(path, size, ro=False):
    """A tmpfs of size (e.g. '6m') mounted on path (created) for the block;
    unmounted (lazily if busy) after it."""
    os.makedirs(path, exist_ok=True)
    opts = 'size=%s,mode=0700' % size + (',ro' if ro else '')
    r = util.run_cmd(['mount', '-t', 'tmpfs', '-o', opts, 'tmpfs', path])
    if r.returncode != 0:
        pytest.fail('cannot mount a tmpfs on %s: %s' % (path, r.stderr),
                    pytrace=False)
    try:
        yield path
    finally:
        r = util.run_cmd(['umount', path])
        if r.returncode != 0:
            util.run_cmd(['umount', '-l', path])


# ------------------------------------------------------------ processes ---

def proc_status(pid, field):
    """A /proc/PID/status field in KiB (VmRSS, VmHWM), or None."""
    try:
        with open('/proc/%d/status' % pid) as f:
            for line in f:
                if line.startswith(field + ':'):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


SANITIZER_RSS_FACTOR = 4  # ASan/TSan shadow memory and quarantine


def sanitizer_of(pid):
    """'asan' or 'tsan' if process pid runs a sanitizer build, else None
    (from the runtime libraries it maps)."""
    try:
        with open('/proc/%d/maps' % pid) as f:
            maps = f.read()
    except OSError:
        return None
    for name in ('tsan', 'asan'):
        if 'lib%s.so' % name in maps:
            return name
    return None


def rss_bound_kib(pid, base_kib):
    """The RSS bound for a release build, times SANITIZER_RSS_FACTOR under
    a sanitizer: its shadow memory says nothing about hfmount's own."""
    return base_kib * (SANITIZER_RSS_FACTOR if sanitizer_of(pid) else 1)


def wait_for(pred, timeout, what, period=0.02):
    """Polls pred() until true; fails the test after timeout seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        v = pred()
        if v:
            return v
        time.sleep(period)
    pytest.fail('%s: not within %s s' % (what, timeout), pytrace=False)


class Worker:
    """fn(*args) in a daemon thread; .result() waits (bounded) for its
    value, re-raising its exception. Records when it ended."""

    def __init__(self, fn, *args, name='worker'):
        self.box = {}
        self.t0 = time.monotonic()
        self.ended = None

        def run():
            try:
                self.box['value'] = fn(*args)
            except BaseException as e:  # handed over by result()
                self.box['error'] = e
            self.ended = time.monotonic()

        self.t = threading.Thread(target=run, daemon=True, name=name)
        self.t.start()

    def done(self):
        return not self.t.is_alive()

    def join(self, timeout):
        self.t.join(timeout)
        return not self.t.is_alive()

    def elapsed(self):
        return (self.ended or time.monotonic()) - self.t0

    def result(self, timeout=util.FS_TIMEOUT, what='worker'):
        if not self.join(timeout):
            pytest.fail('%s did not return within %s s' % (what, timeout),
                        pytrace=False)
        if 'error' in self.box:
            raise self.box['error']
        return self.box['value']


def read_file(path):
    with open(path, 'rb') as f:
        return f.read()


def pread_path(path, length, offset, drop=False):
    """Opens path, optionally drops its page cache (so the read reaches
    hfmount), preads, closes."""
    fd = os.open(path, os.O_RDONLY)
    try:
        if drop:
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        return os.pread(fd, length, offset)
    finally:
        os.close(fd)


def read_uncached(path):
    """The whole file, after dropping its pages from the page cache."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        parts = []
        while True:
            b = os.read(fd, 1 << 20)
            if not b:
                return b''.join(parts)
            parts.append(b)
    finally:
        os.close(fd)


def errno_of(fn, *args, timeout=util.FS_TIMEOUT, what='call'):
    """(errno or None, seconds) of a bounded call."""
    t0 = time.monotonic()
    try:
        util.bounded(fn, *args, timeout=timeout, what=what)
    except OSError as e:
        return e.errno, time.monotonic() - t0
    return None, time.monotonic() - t0


# ---------------------------------------------------------------- mounts ---

def log_lines(m, needle):
    return [l for l in m.log_text().splitlines() if needle in l]


def log_matches(m, pattern):
    rx = re.compile(pattern)
    return [l for l in m.log_text().splitlines() if rx.search(l)]


def level_lines(m, level):
    """Log lines of one level ('error', 'warn', ...)."""
    return [l for l in m.log_text().splitlines()
            if re.search(r'\] %s: ' % level, l)]


def assert_up(m):
    assert m.proc.poll() is None, 'hfmount exited: %s' % m.diagnostics()
    assert m.mounted(), '%s is no longer mounted' % m.mnt


def same_mountpoint(m, name, args=None, cache_dir=None):
    """A util.Mount (not started) of the same argv and mountpoint as m, with
    its own log file; args replace m's options after the cache dir."""
    workdir = os.path.dirname(m.log_path)
    log = os.path.join(workdir, name + '.log')
    argv = list(m.argv)
    argv[argv.index('--log-file') + 1] = log
    if cache_dir:
        argv[argv.index('--cache-dir') + 1] = cache_dir
    if args is not None:
        argv = argv[:argv.index('--log-file') + 2] + list(args) + [argv[-1]]
    return util.Mount(argv, m.mnt, cache_dir or m.cache_dir, log, workdir,
                      m.env, name)


@contextlib.contextmanager
def own_mount(m, ready=True):
    """Starts util.Mount m (and waits for it unless ready=False); at the
    end, unmounts and reaps it, failing on a problem if nothing else
    failed."""
    try:
        m.start()
        if ready:
            m.wait_ready()
        yield m
    except BaseException:
        m.cleanup()
        raise
    problems = m.cleanup()
    if problems:
        pytest.fail('\n'.join(problems), pytrace=False)


def kill9(m):
    """SIGKILL to hfmount; waits until it is gone (its mount is then
    stale: 'Transport endpoint is not connected')."""
    import signal
    m.signal(signal.SIGKILL)
    if m.wait_exit(util.EXIT_TIMEOUT) is None:
        pytest.fail('hfmount survived SIGKILL', pytrace=False)


def statfs_errno(path):
    """errno of statvfs(path) (None if it works). statfs always reaches the
    daemon (stat may be answered from the kernel's attribute cache), so a
    stale FUSE mount answers ENOTCONN at once."""
    try:
        util.bounded(os.statvfs, path, timeout=10, what='statvfs ' + path)
    except OSError as e:
        return e.errno
    return None


ROOT_ATTR_S = 1.0  # fs/hfm.h HFM_VIRTUAL_TIMEOUT_S: the root's attr cache


def wait_remounted(m, timeout=util.MOUNT_TIMEOUT):
    """Waits until m (started on a mountpoint a killed hfmount left stale,
    which mountinfo still lists) serves its new mount: statfs works."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if m.proc.poll() is not None:
            pytest.fail('hfmount exited with status %s instead of mounting '
                        'over the stale mount %s\n%s'
                        % (m.proc.returncode, m.mnt, m.diagnostics()),
                        pytrace=False)
        if m.mounted() and statfs_errno(m.mnt) is None:
            return
        time.sleep(0.05)
    pytest.fail('%s not mounted within %s s\n%s'
                % (m.mnt, timeout, m.diagnostics()), pytrace=False)


def fusermount_lazy(mnt):
    r = util.fusermount_u(mnt, lazy=True)
    assert r is not None and r.returncode == 0, (
        'fusermount3 -u -z %s: %s' % (mnt, r and r.stderr))


def run_bounded(argv, timeout, env=None):
    """subprocess.run with a timeout (the child is killed on expiry, then
    the test fails)."""
    try:
        return subprocess.run(argv, stdin=subprocess.DEVNULL,
                              capture_output=True, timeout=timeout, env=env)
    except subprocess.TimeoutExpired:
        pytest.fail('%r did not finish within %s s' % (argv[:4], timeout),
                    pytrace=False)
