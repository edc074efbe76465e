"""Fixtures of hfmount's end-to-end tests.

- hub (session): the fake Hub (tests/fakehub/fakehub.py) as a child process;
  reset before every test (request log, faults, branches, grants, settings).
- hfmount (session): path of the binary; fails, never skips, when missing.
- mount (function): a factory that runs `hfmount -f` on a fresh mountpoint,
  waits for the mount or the process's death, and always unmounts at
  teardown, checking a clean exit (status 0) and no sanitizer report.

Needs root (mounting FUSE without fusermount's setuid path) and /dev/fuse.
"""
import os
import signal
import sys

import pytest

import util

# Whole-test watchdog on top of the per-call timeouts.
TEST_TIMEOUT = int(os.environ.get('HFM_E2E_TEST_TIMEOUT', '300'))


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_call(item):
    def on_alarm(signum, frame):
        pytest.fail('test exceeded %d s' % TEST_TIMEOUT, pytrace=False)

    old = signal.signal(signal.SIGALRM, on_alarm)
    signal.alarm(TEST_TIMEOUT)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    setattr(item, 'rep_' + rep.when, rep)


def _failed(request):
    rep = getattr(request.node, 'rep_call', None)
    return rep is not None and rep.failed


@pytest.fixture(scope='session')
def hfmount():
    if os.geteuid() != 0:
        pytest.fail('the e2e tests mount FUSE filesystems and need root',
                    pytrace=False)
    if not os.path.exists('/dev/fuse'):
        pytest.fail('/dev/fuse is missing', pytrace=False)
    return util.require_hfmount()


@pytest.fixture(scope='session')
def hub(tmp_path_factory):
    h = util.FakeHub(str(tmp_path_factory.mktemp('fakehub')))
    h.start()
    try:
        h.fixture()  # cached before any test moves a branch
        yield h
    finally:
        h.stop()


@pytest.fixture(autouse=True)
def _reset_hub(request):
    """Reset the fake Hub before each test that uses it; on failure, show
    what the fake Hub printed during the test."""
    if 'hub' not in request.fixturenames:
        yield
        return
    h = request.getfixturevalue('hub')
    h.reset()
    start = len(h.stderr_text())
    yield
    if _failed(request):
        new = h.stderr_text()[start:]
        if new.strip():
            sys.stdout.write('--- fake Hub stderr during the test:\n%s\n'
                             % util.tail(new, 80))


@pytest.fixture
def repo_hub(tmp_path):
    """repo_hub({'acme/llm': DIR, 'datasets/acme/tables': DIR2}) ->
    util.FakeHub, started: a second fake Hub with the fixture and those
    directories published as repos (fakehub.py --repo); stopped at
    teardown. Mount against it with mount(..., endpoint=h.api)."""
    hubs = []

    def factory(repos):
        work = tmp_path / ('repo_hub%d' % len(hubs))
        work.mkdir()
        args = []
        for name, d in sorted(repos.items()):
            args += ['--repo', '%s=%s' % (name, d)]
        h = util.FakeHub(str(work), extra_args=args)
        hubs.append(h)
        h.start()
        return h

    yield factory
    for h in hubs:
        h.stop()


@pytest.fixture
def mount(request, hub, hfmount, tmp_path):
    """mount(spec=None, args=(), env=None, token=None, cache_dir=None,
    log_level='debug', endpoint=None) -> util.Mount, mounted.

    cache_dir=None: a fresh directory; a path: reuse it (remount tests);
    util.NO_CACHE_DIR: no --cache-dir option. env: extra variables (value None
    removes one). endpoint: HF_ENDPOINT instead of the fake Hub's.
    log_file=False: no --log-file (logs go to stderr)."""
    mounts = []

    def factory(spec=None, args=(), env=None, token=None, cache_dir=None,
                log_level='debug', endpoint=None, log_file=True):
        n = len(mounts)
        name = 'hfmount%d' % n
        mnt = tmp_path / ('mnt%d' % n)
        mnt.mkdir()
        mnt = os.path.realpath(str(mnt))
        argv = [hfmount, '-f']
        if cache_dir is util.NO_CACHE_DIR:
            cache = None
        else:
            cache = str(cache_dir or tmp_path / ('cache%d' % n))
            argv += ['--cache-dir', cache]
        log = str(tmp_path / (name + '.log')) if log_file else None
        if log:
            argv += ['--log-file', log]
        if log_level:
            argv += ['--log-level', log_level]
        argv += list(args)
        if spec:
            argv.append(spec)
        argv.append(mnt)

        hf_home = tmp_path / 'hf_home'
        hf_home.mkdir(exist_ok=True)
        e = util.clean_env(endpoint or hub.api, str(hf_home))
        if token is not None:
            e['HF_TOKEN'] = token
        for k, v in (env or {}).items():
            if v is None:
                e.pop(k, None)
            else:
                e[k] = v

        m = util.Mount(argv, mnt, cache, log, str(tmp_path), e, name)
        mounts.append(m)
        m.start()
        m.wait_ready()
        return m

    yield factory

    problems = []
    for m in mounts:
        problems += m.cleanup()
    if _failed(request):
        for m in mounts:
            sys.stdout.write('--- %s\n' % m.diagnostics())
    if problems:
        pytest.fail('\n'.join(problems), pytrace=False)
