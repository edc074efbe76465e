"""A cluster behind a shared pull-through cache (docs/cluster.md).

Debian's nginx runs docs/nginx-hub-cache.conf (placeholders filled in) in
front of the fake Hub; several hfmount instances, each with its own cache
dir (standing for a node), read one 16 MiB LFS file through it:

- forward proxy (HTTP_PROXY, NO_PROXY for the endpoint): the fake CDN
  serves each byte once, no request that reached nginx or the CDN carried
  an Authorization header, the API requests did;
- NO_PROXY (lists, CIDR blocks) decides which hosts bypass the proxy;
- a request carrying the token never goes through a proxy over plain http
  (net/hub_http.c invariant 6): hfmount refuses with one clear line;
- reverse proxy (HF_ENDPOINT at nginx, CDN redirects rewritten to its
  cache server): the same sharing, and the token stops at the endpoint.
"""
import errno
import os
import re
import signal
import socket
import subprocess
import threading
import time
import urllib.parse

import pytest

import util

NGINX = '/usr/sbin/nginx'
CONF_TEMPLATE = os.path.join(util.REPO, 'docs', 'nginx-hub-cache.conf')
NGINX_START_TIMEOUT = 15
NGINX_STOP_TIMEOUT = 10
REPO = 'acme/tiny'
BIG = 'model.safetensors'  # 16 MiB LFS file
NODES = 4
TOKEN = util.TOKENS['alice']
SLICE = 1024 * 1024  # `slice 1m` in the config


class Nginx:
    """Debian's nginx in the foreground with the documented config."""

    def __init__(self, workdir, hub):
        self.dir = os.path.join(workdir, 'nginx')
        os.makedirs(self.dir)
        self.cdn_hostport = urllib.parse.urlsplit(hub.cdn).netloc
        self.hub_api = hub.api
        self.proxy_port = util.closed_port()
        self.endpoint_port = util.closed_port()
        self.cdn_cache_port = util.closed_port()
        self.access_log = os.path.join(self.dir, 'access.log')
        self.stderr_path = os.path.join(self.dir, 'stderr')
        self.conf = os.path.join(self.dir, 'nginx.conf')
        self.proc = None

    @property
    def proxy_url(self):
        return 'http://127.0.0.1:%d' % self.proxy_port

    @property
    def endpoint_url(self):
        return 'http://127.0.0.1:%d' % self.endpoint_port

    def render(self):
        with open(CONF_TEMPLATE) as f:
            text = f.read()
        values = {
            'USER': 'root',  # the test's tmp dirs are root's
            'PREFIX': self.dir,
            'CACHE_DIR': os.path.join(self.dir, 'cache'),
            'CACHE_MAX': '1g',
            'ACCESS_LOG': self.access_log,
            'CLUSTER_NET': '127.0.0.0/8',
            'RESOLVER': '127.0.0.1',  # never asked: every host is an IP
            'EXTRA_CDN_HOST': self.cdn_hostport,
            'PROXY_LISTEN': '127.0.0.1:%d' % self.proxy_port,
            'ENDPOINT_LISTEN': '127.0.0.1:%d' % self.endpoint_port,
            'HUB_UPSTREAM': self.hub_api,
            'CDN_CACHE_LISTEN': '127.0.0.1:%d' % self.cdn_cache_port,
            'CDN_CACHE_URL': 'http://127.0.0.1:%d' % self.cdn_cache_port,
        }
        for k, v in values.items():
            text = text.replace('@%s@' % k, v)
        left = sorted(set(re.findall(r'@[A-Z_]+@', text)))
        assert not left, ('docs/nginx-hub-cache.conf has placeholders the '
                          'test does not know: %s' % left)
        with open(self.conf, 'w') as f:
            f.write(text)

    def start(self):
        if not (os.path.isfile(NGINX) and os.access(NGINX, os.X_OK)):
            pytest.fail('%s is missing: install Debian\'s nginx (apt-get '
                        'install nginx-light or nginx)' % NGINX,
                        pytrace=False)
        self.render()
        err = open(self.stderr_path, 'wb')
        self.proc = subprocess.Popen(
            [NGINX, '-p', self.dir, '-c', self.conf, '-e', 'stderr',
             '-g', 'daemon off;'],
            stdin=subprocess.DEVNULL, stdout=err, stderr=err,
            start_new_session=True)
        err.close()
        deadline = time.monotonic() + NGINX_START_TIMEOUT
        ports = [self.proxy_port, self.endpoint_port, self.cdn_cache_port]
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                pytest.fail('nginx exited with status %s:\n%s'
                            % (self.proc.returncode, self.stderr_text()),
                            pytrace=False)
            if all(self._listening(p) for p in ports):
                return
            time.sleep(0.05)
        pytest.fail('nginx did not listen on %s within %s s:\n%s'
                    % (ports, NGINX_START_TIMEOUT, self.stderr_text()),
                    pytrace=False)

    @staticmethod
    def _listening(port):
        try:
            socket.create_connection(('127.0.0.1', port), 1).close()
            return True
        except OSError:
            return False

    def stop(self):
        """SIGQUIT (graceful), then SIGTERM, then SIGKILL to its own
        process group (master and workers started here)."""
        if self.proc is None or self.proc.poll() is not None:
            return
        for sig in (signal.SIGQUIT, signal.SIGTERM, signal.SIGKILL):
            try:
                if sig == signal.SIGKILL:
                    os.killpg(self.proc.pid, sig)
                else:
                    self.proc.send_signal(sig)
            except ProcessLookupError:
                return
            try:
                self.proc.wait(NGINX_STOP_TIMEOUT)
                return
            except subprocess.TimeoutExpired:
                continue

    def stderr_text(self):
        return util.read_text(self.stderr_path)

    def log_rows(self):
        """The access log as dicts: port, method, target, range, status,
        cache, upstream, authorization."""
        rows = []
        pat = re.compile(r'^(\S+) (\d+) "(\S+) (\S+)" range="([^"]*)" '
                         r'status=(\d+) cache=(\S+) upstream="([^"]*)" '
                         r'authorization=(\w+) bytes=(\d+)$')
        for line in util.read_text(self.access_log).splitlines():
            m = pat.match(line)
            assert m, 'unexpected nginx access log line: %r' % line
            rows.append(dict(port=int(m.group(2)), method=m.group(3),
                             target=m.group(4), range=m.group(5),
                             status=int(m.group(6)), cache=m.group(7),
                             upstream=m.group(8),
                             authorization=m.group(9)))
        return rows


@pytest.fixture
def nginx(hub, tmp_path):
    n = Nginx(str(tmp_path), hub)
    try:
        n.start()
        yield n
    finally:
        n.stop()


def cdn_ranges(rows):
    """(first, last) of every CDN GET, sorted; each must be a range."""
    out = []
    for r in rows:
        assert r['method'] == 'GET', 'CDN request %r' % r
        m = re.match(r'^bytes=(\d+)-(\d+)$', r.get('range') or '')
        assert m, 'CDN request without a closed range: %r' % r
        out.append((int(m.group(1)), int(m.group(2))))
    return sorted(out)


def assert_each_byte_once(rows, size):
    """The CDN's ranges tile [0, size): no overlap, no hole. A range past
    the end (nginx asks for whole slices) serves up to the end."""
    ranges = cdn_ranges(rows)
    pos = 0
    for first, last in ranges:
        assert first == pos, ('CDN ranges overlap or leave a hole at %d: %s'
                              % (pos, ranges))
        pos = min(last, size - 1) + 1
    assert pos == size, ('CDN served %d bytes of a %d-byte file: %s'
                         % (pos, size, ranges))


def read_concurrently(mounts, path, info):
    """Every mount reads path at once; checks each copy's sha256."""
    results = {}

    def one(i, m):
        try:
            results[i] = util.read_bytes(m.path(path))
        except BaseException as e:  # re-raised below
            results[i] = e

    threads = [threading.Thread(target=one, args=(i, m), daemon=True)
               for i, m in enumerate(mounts)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(util.FS_TIMEOUT + 5)
    for i in range(len(mounts)):
        assert i in results, 'node %d did not finish reading %s' % (i, path)
        if isinstance(results[i], BaseException):
            raise results[i]
        util.check_content(results[i], info, 'node %d: %s' % (i, path))


def api_rows(rows):
    return [r for r in rows
            if r['origin'] == 'api' and not r['path'].startswith('/_fake')]


def test_four_nodes_share_one_cache_through_http_proxy(hub, mount, nginx):
    info = hub.files('model', REPO)[BIG]
    assert info['size'] >= 8 * SLICE and info.get('sha256')
    env = {'HTTP_PROXY': nginx.proxy_url, 'NO_PROXY': '127.0.0.1',
           'http_proxy': None, 'no_proxy': None, 'ALL_PROXY': None,
           'all_proxy': None}
    mounts = [mount(REPO, env=env, token=TOKEN) for _ in range(NODES)]
    assert len({m.cache_dir for m in mounts}) == NODES

    read_concurrently(mounts, BIG, info)

    rows = hub.requests()
    cdn = [r for r in rows if r['origin'] == 'cdn']
    assert cdn, 'no request reached the fake CDN:\n' + util.fmt_rows(rows)
    assert_each_byte_once(cdn, info['size'])
    assert not [r for r in cdn if r['auth']], (
        'a request reached the CDN with an Authorization header:\n'
        + util.fmt_rows(cdn))
    api = api_rows(rows)
    resolves = [r for r in api if util.classify(r) == 'resolve'
                and r['path'].endswith('/' + BIG)]
    assert len(resolves) >= NODES, util.fmt_rows(api)
    assert all(r['auth'] and r['token'] == TOKEN for r in api), (
        'an API request went without the token:\n' + util.fmt_rows(api))

    log = nginx.log_rows()
    through = [r for r in log if r['port'] == nginx.proxy_port]
    assert through, ('nothing went through nginx: HTTP_PROXY ignored?\n'
                     + nginx.stderr_text())
    sha_path = '/' + info['sha256']
    assert all(r['target'].startswith('http://%s/' % nginx.cdn_hostport)
               and r['target'].endswith(sha_path) for r in through), (
        'only CDN downloads go through the proxy (NO_PROXY=127.0.0.1): %s'
        % through)
    assert all(r['status'] == 206 for r in through), through
    assert any(r['cache'] == 'HIT' for r in through), (
        'no read was a cache hit: %s' % through)
    assert all(r['authorization'] == 'no' for r in log), (
        'a request reached nginx with an Authorization header: %s' % log)
    for m in mounts:
        assert TOKEN not in m.log_text() + m.stderr_text()
    assert TOKEN not in util.read_text(nginx.access_log)


def test_no_proxy_decides_what_bypasses_the_proxy(hub, mount):
    """A dead proxy: hosts NO_PROXY names work, the others do not."""
    info = hub.files('model', REPO)[BIG]
    dead = 'http://127.0.0.1:%d' % util.closed_port()
    base = {'HTTP_PROXY': None, 'http_proxy': dead, 'ALL_PROXY': None,
            'all_proxy': None, 'NO_PROXY': None, 'no_proxy': None}

    # Every host exempt: a name that only matches as a domain suffix, then
    # a CIDR block holding both fake Hub addresses.
    env = dict(base, no_proxy='example.com, .hf.co,127.0.0.0/8')
    m = mount(REPO, env=env, token=TOKEN)
    util.check_content(util.read_bytes(m.path(BIG)), info, BIG)

    # Only the endpoint exempt (upper-case NO_PROXY): the API works, a CDN
    # download goes to the dead proxy and fails with EIO, naming it.
    hub.reset()
    env = dict(base, NO_PROXY='127.0.0.1')
    m2 = mount(REPO, env=env, token=TOKEN, args=('--retries', '1'))
    cfg = hub.files('model', REPO)['config.json']
    util.check_content(util.read_bytes(m2.path('config.json')), cfg,
                       'config.json')
    util.expect_errno(errno.EIO, util.read_bytes, m2.path(BIG),
                      timeout=util.EIO_BOUND)
    rows = hub.requests()
    assert not [r for r in rows if r['origin'] == 'cdn'], (
        'the CDN was reached directly, past the proxy:\n'
        + util.fmt_rows(rows))
    port = urllib.parse.urlsplit(dead).port
    assert re.search(r'127\.0\.0\.1.*%d|%d.*127\.0\.0\.1' % (port, port),
                     m2.log_text()), (
        'the failed read does not name the proxy:\n' + m2.log_text())


def run_unmountable(hfmount, tmp_path, env, args=()):
    """hfmount -f that must exit before mounting; (status, log, stderr)."""
    mnt = tmp_path / 'mnt_refused'
    mnt.mkdir()
    mnt = os.path.realpath(str(mnt))
    log = str(tmp_path / 'refused.log')
    argv = [hfmount, '-f', '--cache-dir', str(tmp_path / 'cache_refused'),
            '--log-file', log, '--log-level', 'debug'] + list(args) + \
        [REPO, mnt]
    m = util.Mount(argv, mnt, None, log, str(tmp_path), env, 'refused')
    try:
        m.start()
        code = m.wait_exit(util.MOUNT_TIMEOUT)
        mounted = m.mounted()
    finally:
        problems = m.cleanup()
    assert code is not None and not mounted, (
        'hfmount mounted (or hung) although it must refuse:\n'
        + m.diagnostics())
    assert not problems, problems
    return code, m.log_text(), m.stderr_text()


def test_token_never_goes_through_a_proxy_in_the_clear(hub, hfmount, nginx,
                                                       tmp_path):
    """Plain-http endpoint, a token, and a proxy for it: refused with one
    line; nothing reached nginx or the Hub with the token."""
    hf_home = tmp_path / 'hf_home'
    hf_home.mkdir()
    env = util.clean_env(hub.api, str(hf_home))
    for k in ('http_proxy', 'no_proxy', 'NO_PROXY', 'all_proxy',
              'ALL_PROXY'):
        env.pop(k, None)
    env['HTTP_PROXY'] = nginx.proxy_url
    env['HF_TOKEN'] = TOKEN

    code, log, err = run_unmountable(hfmount, tmp_path, env)
    assert code == 1, 'exit status %s, expected 1 (could not mount)' % code
    want = ('refusing to send the token to %s through the proxy %s '
            '(HTTP_PROXY) in the clear' % (hub.api.lower(), nginx.proxy_url))
    text = log + err
    assert want in text, 'no refusal line %r in:\n%s' % (want, text)
    assert 'NO_PROXY' in text
    assert TOKEN not in text
    assert nginx.log_rows() == [], nginx.log_rows()
    assert [r for r in api_rows(hub.requests()) if r['auth']] == []


def test_reverse_proxy_endpoint_shares_cache_and_keeps_token(hub, mount,
                                                             nginx):
    """HF_ENDPOINT at nginx (setup B): API through it with the token, CDN
    redirects rewritten to its cache server, which gets no token."""
    info = hub.files('model', REPO)[BIG]
    env = {k: None for k in ('HTTP_PROXY', 'http_proxy', 'NO_PROXY',
                             'no_proxy', 'ALL_PROXY', 'all_proxy')}
    mounts = [mount(REPO, env=env, token=TOKEN, endpoint=nginx.endpoint_url)
              for _ in range(2)]

    read_concurrently(mounts, BIG, info)

    rows = hub.requests()
    cdn = [r for r in rows if r['origin'] == 'cdn']
    assert_each_byte_once(cdn, info['size'])
    assert not [r for r in cdn if r['auth']], util.fmt_rows(cdn)
    api = api_rows(rows)
    assert api and all(r['token'] == TOKEN for r in api), util.fmt_rows(api)

    log = nginx.log_rows()
    front = [r for r in log if r['port'] == nginx.endpoint_port]
    cache = [r for r in log if r['port'] == nginx.cdn_cache_port]
    assert front and all(r['authorization'] == 'yes' for r in front), front
    assert cache and all(r['authorization'] == 'no' for r in cache), (
        'the token reached the CDN cache server: %s' % cache)
    assert any(r['cache'] == 'HIT' for r in cache), cache
    assert all(r['target'].endswith('/' + info['sha256']) for r in cache)
