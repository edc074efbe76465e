"""Issue 6, "fits the user's world": real tools on mounted paths, namespace
listings and legacy ids, offline use, prefetch, status and the cache
commands.

Every tool runs as a child process with a timeout (python3 -c json.load,
numpy memory-mapping a safetensors tensor, sha256sum, jq, tar, cp -r, find),
and its answer is checked against the fake Hub's fixture: bytes fetched
from the fake Hub itself, hashes from /_fake/fixture. The hfmount
subcommands (prefetch, status, cache ls|clean) run the same way.
"""
import errno
import fnmatch
import hashlib
import io
import json
import math
import os
import pty
import re
import select
import struct
import subprocess
import tarfile
import time

import pytest

import util
import faults_util as fu
from util import PYTHON, read_bytes

TOOL_TIMEOUT = 120      # one tool on the mount (reads up to 16 MiB)
PREFETCH_TIMEOUT = 120  # hfmount prefetch of the whole acme/tiny
CHUNK = 4 << 20         # the chunk size docs/architecture.md describes
TINY = ('model', 'acme/tiny')
MODEL = 'model.safetensors'


# ---------------------------------------------------------------- helpers ---

def tool(argv, timeout=TOOL_TIMEOUT, ok=True, **kw):
    """Runs a tool with a timeout; with ok=True it must exit 0."""
    r = util.run_cmd(argv, timeout=timeout, **kw)
    if ok:
        assert r.returncode == 0, ('%r exited %d\nstdout: %s\nstderr: %s'
                                   % (argv, r.returncode, r.stdout[-2000:],
                                      r.stderr[-2000:]))
    return r


def hfm_env(hub, tmp_path):
    home = tmp_path / 'hf_home'
    home.mkdir(exist_ok=True)
    return util.clean_env(hub.api, str(home))


def hfm(hfmount, args, hub, tmp_path, timeout=util.CMD_TIMEOUT, env=None):
    """One hfmount subcommand (prefetch, status, cache) with pipes."""
    e = hfm_env(hub, tmp_path)
    e.update(env or {})
    return util.run_cmd([hfmount] + list(args), timeout=timeout, env=e)


def json_paths(hub, rev='main'):
    return sorted(p for p in hub.files(*TINY, rev=rev)
                  if fnmatch.fnmatch(os.path.basename(p), '*.json'))


def safetensors_header(data):
    n = struct.unpack('<Q', data[:8])[0]
    return n, json.loads(data[8:8 + n])


def status_json(hfmount, m, hub, tmp_path):
    r = hfm(hfmount, ['status', '--json', m.mnt], hub, tmp_path)
    assert r.returncode == 0, 'hfmount status --json exited %d: %s' % (
        r.returncode, r.stderr)
    try:
        return json.loads(r.stdout)
    except ValueError:
        pytest.fail('hfmount status --json printed no JSON: %r' % r.stdout,
                    pytrace=False)


_LS_LINE = re.compile(r'^\s*(\d+(?:\.\d+)?) (B|KiB|MiB|GiB|TiB)'
                      r'\s+(\d+) chunks?\s+([0-9a-f]{12})\s+(\S+): (.*)$')


def cache_ls(hfmount, cache_dir, hub, tmp_path):
    """(entries, text) of `hfmount cache ls`; entries are dicts (chunks,
    key, repo, path)."""
    r = hfm(hfmount, ['cache', 'ls', '--cache-dir', cache_dir], hub, tmp_path)
    assert r.returncode == 0, 'hfmount cache ls exited %d: %s' % (
        r.returncode, r.stderr)
    entries = []
    for line in r.stdout.splitlines():
        m = _LS_LINE.match(line)
        if m:
            entries.append(dict(chunks=int(m.group(3)), key=m.group(4),
                                repo=m.group(5), path=m.group(6)))
    return entries, r.stdout


def byte_rows(hub):
    """Requests that move file bytes: resolve, resolve-cache, CDN."""
    return [r for r in hub.requests()
            if util.classify(r) in ('resolve', 'resolve-cache', 'cdn')]


# ------------------------------------------------------------ real tools ---

def test_python_json_load_of_config(mount, hub):
    m = mount()
    want = json.loads(hub.download(*TINY, 'main', 'config.json'))
    r = tool([PYTHON, '-c', 'import json, sys; '
              'print(json.dumps(json.load(open(sys.argv[1]))))',
              m.path('acme', 'tiny', 'config.json')])
    assert json.loads(r.stdout) == want


NUMPY_SCRIPT = r'''
import hashlib, json, sys
import numpy as np
path = sys.argv[1]
with open(path, 'rb') as f:
    n = int.from_bytes(f.read(8), 'little')
    header = json.loads(f.read(n))
out = {}
for name, t in header.items():
    if name == '__metadata__':
        continue
    assert t['dtype'] == 'F32', t
    begin, end = t['data_offsets']
    a = np.memmap(path, dtype=np.float32, mode='r', offset=8 + n + begin,
                  shape=tuple(t['shape']))
    assert a.nbytes == end - begin
    out[name] = {'shape': list(a.shape), 'sum': float(a.sum(dtype=np.float64)),
                 'sha256': hashlib.sha256(a.tobytes()).hexdigest()}
print(json.dumps(out))
'''


def test_numpy_memmaps_safetensors_tensors(mount, hub):
    try:
        import numpy as np
    except ImportError:
        pytest.fail("numpy is missing: install Debian's python3-numpy "
                    '(scripts/deps.sh does)', pytrace=False)
    data = hub.download(*TINY, 'main', MODEL)
    n, header = safetensors_header(data)
    want = {}
    for name, t in header.items():
        if name == '__metadata__':
            continue
        begin, end = t['data_offsets']
        raw = data[8 + n + begin:8 + n + end]
        a = np.frombuffer(raw, dtype=np.float32).reshape(t['shape'])
        want[name] = {'shape': t['shape'],
                      'sum': float(a.sum(dtype=np.float64)),
                      'sha256': hashlib.sha256(raw).hexdigest()}
    assert set(want) == {'embed', 'bias'}, 'fixture tensors: %r' % set(want)
    m = mount()
    r = tool([PYTHON, '-c', NUMPY_SCRIPT, m.path('acme', 'tiny', MODEL)])
    got = json.loads(r.stdout)
    assert got == want, 'numpy memmap over the mount: %r, fixture: %r' % (
        got, want)


@pytest.mark.parametrize('rel', [MODEL, 'tiny.gguf', 'archive.tar'])
def test_sha256sum_equals_lfs_oid(mount, hub, rel):
    info = hub.files(*TINY)[rel]
    assert info.get('sha256'), '%s is not an LFS file in the fixture' % rel
    m = mount()
    r = tool(['sha256sum', m.path('acme', 'tiny', rel)])
    assert r.stdout.split()[0] == info['sha256'], (
        'sha256sum %s: %s, LFS oid %s' % (rel, r.stdout, info['sha256']))


@pytest.mark.parametrize('rev', ['main', 'v1.0'])
def test_jq_reads_config(mount, hub, rev):
    m = mount()
    want = json.loads(hub.download(*TINY, rev, 'config.json'))
    name = 'tiny' if rev == 'main' else 'tiny@' + rev
    path = m.path('acme', name, 'config.json')
    r = tool(['jq', '-r', '.model_type', path])
    assert r.stdout.strip() == want['model_type']
    r = tool(['jq', '-r', '.fakehub_revision', path])
    assert r.stdout.strip() == want['fakehub_revision'] == rev


def test_tar_lists_and_extracts_archive(mount, hub, tmp_path):
    data = hub.download(*TINY, 'main', 'archive.tar')
    with tarfile.open(fileobj=io.BytesIO(data)) as t:
        members = t.getmembers()
        want_names = [x.name + ('/' if x.isdir() else '') for x in members]
        files = {x.name: t.extractfile(x).read() for x in members
                 if x.isfile()}
    assert files, 'the fixture archive holds no file'
    m = mount()
    tar_path = m.path('acme', 'tiny', 'archive.tar')
    r = tool(['tar', '-tf', tar_path])
    assert r.stdout.splitlines() == want_names
    dest = tmp_path / 'untar'
    dest.mkdir()
    tool(['tar', '-xf', tar_path, '-C', str(dest)])
    for name, body in files.items():
        assert (dest / name).read_bytes() == body, 'tar -x: %s differs' % name


def _check_tree(dest, files, prefix, what):
    got = util.walk_files(str(dest))
    want = sorted(p[len(prefix):] for p in files if p.startswith(prefix))
    assert got == want, '%s: copied %r, fixture has %r' % (what, got, want)
    for rel in want:
        with open(os.path.join(str(dest), rel), 'rb') as f:
            util.check_content(f.read(), files[prefix + rel],
                               '%s: %s' % (what, rel))


@pytest.mark.parametrize('type, repo_id, mpath, prefix', [
    ('model', 'acme/tiny', ('acme', 'tiny', 'nested'), 'nested/'),
    ('dataset', 'acme/data', ('datasets', 'acme', 'data'), ''),
    ('space', 'acme/demo', ('spaces', 'acme', 'demo'), ''),
], ids=['tiny-nested', 'dataset', 'space'])
def test_cp_r_copies_the_tree(mount, hub, tmp_path, type, repo_id, mpath,
                              prefix):
    m = mount()
    dest = tmp_path / 'copy'
    tool(['cp', '-r', m.path(*mpath), str(dest)])
    _check_tree(dest, hub.files(type, repo_id), prefix,
                'cp -r %s' % '/'.join(mpath))


def test_find_name_json(mount, hub):
    m = mount()
    root = m.path('acme', 'tiny')
    r = tool(['find', root, '-name', '*.json'])
    got = sorted(os.path.relpath(l, root) for l in r.stdout.splitlines())
    assert got == json_paths(hub)


# -------------------------------------------------- namespaces, legacy ids ---

def _public(hub, type, ns):
    return sorted(r['id'].split('/', 1)[1] for r in hub.fixture()['repos']
                  if r['type'] == type and r['id'].startswith(ns + '/')
                  and not r['private'])


@pytest.mark.parametrize('type, prefix', [
    ('model', ()), ('dataset', ('datasets',)), ('space', ('spaces',))])
def test_ls_namespace_lists_its_repos(mount, hub, type, prefix):
    want = _public(hub, type, 'acme')
    assert want, 'the fixture has no public %s of acme' % type
    m = mount()
    r = tool(['ls', '-1', m.path(*(prefix + ('acme',)))])
    assert r.stdout.split('\n')[:-1] == want
    lists = [x for x in hub.requests() if util.classify(x) == 'list']
    assert lists and all('author=acme' in (x['query'] or '') for x in lists), (
        'ls of a namespace did not use the listing API:\n%s'
        % util.fmt_rows(hub.requests()))


def _ns_lists(hub, ns):
    return [x for x in hub.requests() if util.classify(x) == 'list'
            and 'author=%s' % ns in (x['query'] or '')]


def test_ls_namespace_follows_every_page(mount, hub):
    """The Hub answers acme's listing with 2500 repos, 1000 a page: ls
    shows all of them, in three requests that follow the Link header."""
    m = mount()
    util.stat(m.path('acme'))  # the namespace check is not the listing
    before = len(_ns_lists(hub, 'acme'))
    hub.fault(match='author=acme', origin='api', action='many_repos',
              entries=2500)
    got = tool(['ls', '-1', m.path('acme')]).stdout.split('\n')[:-1]
    assert got == ['r%07d' % i for i in range(2500)], (
        'ls acme listed %d names, first %r, last %r; want r0000000.. '
        'r0002499' % (len(got), got[:1], got[-1:]))
    pages = _ns_lists(hub, 'acme')[before:]
    assert len(pages) == 3, 'listing requests:\n%s' % util.fmt_rows(pages)
    assert sum('cursor=' in (x['query'] or '') for x in pages) == 2


def test_ls_namespace_listing_is_bounded(mount, hub):
    """An org with 25,000 repos: ls stops at 10,000 (ten pages, not 25),
    says so in one warning, and a repo the listing did not show is still
    reachable by name."""
    m = mount()
    util.stat(m.path('acme'))
    before = len(_ns_lists(hub, 'acme'))
    hub.fault(match='author=acme', origin='api', action='many_repos',
              entries=25000, count=100)
    for _ in range(2):
        got = tool(['ls', '-1', m.path('acme')]).stdout.split('\n')[:-1]
        assert got == ['r%07d' % i for i in range(10000)], (
            'ls acme listed %d names (want the first 10000), last %r'
            % (len(got), got[-1:]))
    pages = _ns_lists(hub, 'acme')[before:]
    assert len(pages) == 20, '%d listing requests for two ls, want 10 each' % (
        len(pages))
    warn = [l for l in m.log_text().splitlines()
            if "listing of 'acme' stopped at 10000 repos" in l]
    assert len(warn) == 1, 'want one warning for two ls:\n%s' % m.log_text()
    assert tool(['cat', m.path('acme', 'tiny', 'config.json')]).stdout


def test_ls_namespace_shows_private_repos_to_their_owner(mount, hub):
    private = sorted(r['id'].split('/', 1)[1] for r in hub.fixture()['repos']
                     if r['type'] == 'model' and r['id'].startswith('acme/')
                     and r['private'])
    assert private
    m = mount(token=util.TOKENS['alice'])
    r = tool(['ls', '-1', m.path('acme')])
    assert r.stdout.split('\n')[:-1] == sorted(_public(hub, 'model', 'acme')
                                               + private)


def test_legacy_id_resolves_like_the_hub(mount, hub):
    target = [r for r in hub.fixture()['repos'] if 'gpt2' in r['aliases']]
    assert len(target) == 1, 'the fixture has no repo aliased gpt2'
    target = target[0]
    m = mount()
    r = tool(['cat', m.path('gpt2', 'config.json')])
    util.check_content(r.stdout.encode(),
                       hub.files('model', target['id'])['config.json'],
                       'cat MNT/gpt2/config.json')
    commit = util.getxattr(m.path('gpt2'), 'user.hf.commit').decode()
    assert commit == hub.commit('model', target['id']), (
        'user.hf.commit of MNT/gpt2 is %s, %s is at %s'
        % (commit, target['id'], hub.commit('model', target['id'])))


# ----------------------------------------------------------------- offline ---

OFFLINE = {'HF_HUB_OFFLINE=1': dict(env={'HF_HUB_OFFLINE': '1'}),
           '--offline': dict(args=['--offline'])}


def _warm(mount, hub, tmp_path):
    """Mounts online and reads config.json, model.safetensors and
    acme/tiny@v1.0/config.json, lists many/ (never reading a file of it);
    unmounts. Returns the cache dir."""
    cache = str(tmp_path / 'warm-cache')
    m = mount(cache_dir=cache)
    for rel in ('config.json', MODEL):
        util.check_content(read_bytes(m.path('acme', 'tiny', rel)),
                           hub.files(*TINY)[rel], 'online ' + rel)
    read_bytes(m.path('acme', 'tiny@v1.0', 'config.json'))
    assert len(util.listdir(m.path('acme', 'tiny', 'many'))) == 1500
    assert m.unmount() == 0
    hub.reset()
    return cache


@pytest.mark.parametrize('how', list(OFFLINE))
def test_offline_serves_the_cache_with_no_request(mount, hub, hfmount,
                                                  tmp_path, how):
    cache = _warm(mount, hub, tmp_path)
    m = mount(cache_dir=cache, **OFFLINE[how])
    for name, rev, rel in (('tiny', 'main', 'config.json'),
                           ('tiny', 'main', MODEL),
                           ('tiny@v1.0', 'v1.0', 'config.json')):
        util.check_content(read_bytes(m.path('acme', name, rel)),
                           hub.files(*TINY, rev=rev)[rel],
                           'offline (%s) %s/%s' % (how, name, rel))
    assert sorted(util.listdir(m.path('acme', 'tiny'))) == \
        hub.children(*TINY)
    st = status_json(hfmount, m, hub, tmp_path)
    assert st['offline'] is True and st['requests'] == 0, st
    rows = hub.requests()
    assert not rows, 'offline (%s) made requests:\n%s' % (how,
                                                          util.fmt_rows(rows))


@pytest.mark.parametrize('how', list(OFFLINE))
def test_offline_unseen_repo_is_enoent_with_one_log_line(mount, hub,
                                                         tmp_path, how):
    cache = _warm(mount, hub, tmp_path)
    m = mount(cache_dir=cache, **OFFLINE[how])
    util.expect_errno(errno.ENOENT, os.stat,
                      m.path('datasets', 'acme', 'data'))
    util.expect_errno(errno.ENOENT, os.stat,
                      m.path('acme', 'tiny@dev', 'config.json'))
    lines = [l for l in m.log_text().splitlines() if 'not in the cache' in l]
    for what in ("'datasets/acme/data'",
                 "'acme/tiny' at revision 'dev'"):
        mine = [l for l in lines if what in l]
        assert len(mine) == 1, (
            'offline lookup of %s: want one log line saying "not in the '
            'cache", got %r' % (what, lines))
    assert not hub.requests(), util.fmt_rows(hub.requests())


@pytest.mark.parametrize('how', list(OFFLINE))
def test_offline_unseen_file_is_eio_with_one_log_line(mount, hub, tmp_path,
                                                      how):
    cache = _warm(mount, hub, tmp_path)
    m = mount(cache_dir=cache, **OFFLINE[how])
    path = m.path('acme', 'tiny', 'many', 'f0001.txt')
    st = util.stat(path)  # the listing of many/ was seen: lookup works
    assert st.st_size == hub.files(*TINY)['many/f0001.txt']['size']
    # Twice: a failed first read must not leave the file stuck.
    for attempt in (1, 2):
        util.expect_errno(errno.EIO, read_bytes, path, timeout=20,
                          what='offline read #%d of an uncached file'
                          % attempt)
    lines = [l for l in m.log_text().splitlines()
             if 'not in the cache' in l and 'many/f0001.txt' in l]
    assert 1 <= len(lines) <= 2, (
        'want one "not in the cache" log line per failed read of '
        'many/f0001.txt, got %r' % lines)
    assert not hub.requests(), util.fmt_rows(hub.requests())


# ---------------------------------------------------------------- prefetch ---

def test_prefetch_without_a_terminal_then_mount_reads_from_disk(
        mount, hub, hfmount, tmp_path):
    cache = str(tmp_path / 'pf-cache')
    r = hfm(hfmount, ['prefetch', '--cache-dir', cache, 'acme/tiny'], hub,
            tmp_path, timeout=PREFETCH_TIMEOUT)
    out = r.stdout + r.stderr
    assert r.returncode == 0, 'prefetch exited %d:\n%s' % (r.returncode, out)
    lines = [l for l in out.splitlines() if l.strip()]
    assert lines and all(l.startswith('prefetch: ') for l in lines), (
        'prefetch without a terminal: want plain "prefetch: ..." lines:\n%s'
        % out)
    assert '\r' not in out, 'a progress bar (\\r) without a terminal: %r' % out
    assert hub.commit(*TINY) in out, 'prefetch does not name the commit'
    files = hub.files(*TINY)
    assert '%d files' % len(files) in out, (
        'prefetch does not count %d files:\n%s' % (len(files), out))
    assert byte_rows(hub), 'prefetch fetched no bytes'

    hub.reset()
    m = mount(cache_dir=cache)
    for rel in (MODEL, 'tiny.gguf', 'many/f0777.txt'):
        util.check_content(read_bytes(m.path('acme', 'tiny', rel)),
                           files[rel], 'after prefetch: ' + rel)
    rows = byte_rows(hub)
    assert not rows, ('reads after a prefetch went to the network:\n%s'
                      % util.fmt_rows(rows))


def test_prefetch_patterns_filter(hub, hfmount, tmp_path):
    cache = str(tmp_path / 'pf-cache')
    r = hfm(hfmount, ['prefetch', '--cache-dir', cache, 'acme/tiny',
                      '*.json'], hub, tmp_path, timeout=PREFETCH_TIMEOUT)
    assert r.returncode == 0, r.stderr
    entries, text = cache_ls(hfmount, cache, hub, tmp_path)
    want = json_paths(hub)
    assert sorted(e['path'] for e in entries) == want, (
        "prefetch '*.json' then cache ls:\n%s\nwant %r" % (text, want))
    assert all(e['repo'] == 'acme/tiny' for e in entries), text
    r = hfm(hfmount, ['prefetch', '--cache-dir', cache, 'acme/tiny@v1.0',
                      'config.json'], hub, tmp_path, timeout=PREFETCH_TIMEOUT)
    assert r.returncode == 0, r.stderr
    assert hub.commit(*TINY, rev='v1.0') in r.stdout + r.stderr
    v1 = hub.files(*TINY, rev='v1.0')['config.json']
    entries, text = cache_ls(hfmount, cache, hub, tmp_path)
    assert [e for e in entries if e['key'] == v1['oid'][:12]], (
        'prefetch acme/tiny@v1.0 config.json: not in cache ls\n%s' % text)


@pytest.mark.concurrency
def test_prefetch_fetches_files_in_parallel(hub, hfmount, tmp_path):
    """100 small files behind a Hub that takes DELAY s per answer: each file
    costs two answers (resolve 307, resolve-cache 206), so one at a time
    takes 200 * DELAY; the parallel fetching the issue asks for (--help:
    "in parallel") must do much better."""
    delay = 0.2
    want = sorted(p for p in hub.files(*TINY) if p.startswith('many/f00'))
    assert len(want) == 100
    hub.settings(delay=delay)
    t0 = time.monotonic()
    r = hfm(hfmount, ['prefetch', '--cache-dir', str(tmp_path / 'c'),
                      'acme/tiny', 'many/f00*'], hub, tmp_path,
            timeout=PREFETCH_TIMEOUT)
    took = time.monotonic() - t0
    hub.settings(delay=0)
    assert r.returncode == 0, r.stderr
    entries, text = cache_ls(hfmount, str(tmp_path / 'c'), hub, tmp_path)
    assert sorted(e['path'] for e in entries) == want, text
    serial = 2 * len(want) * delay
    assert took < serial / 3, (
        'prefetch of %d small files took %.1f s with a %.1f s Hub: one file '
        'at a time takes %.0f s; not parallel' % (len(want), took, delay,
                                                  serial))


def test_prefetch_while_mounted_fills_the_shared_cache(mount, hub, hfmount,
                                                      tmp_path):
    """Issue 11: prefetch runs beside a mount of the same cache dir (no
    refusal any more), and the mount then reads what prefetch stored: no
    CDN request, chunks from disk."""
    info = hub.files(*TINY)[MODEL]
    m = mount()
    r = hfm(hfmount, ['prefetch', '--cache-dir', m.cache_dir, 'acme/tiny',
                      MODEL], hub, tmp_path, timeout=PREFETCH_TIMEOUT)
    assert r.returncode == 0, 'prefetch beside a mount: exit %d: %s' % (
        r.returncode, r.stderr)
    hub.reset()
    util.check_content(read_bytes(m.path('acme', 'tiny', MODEL)), info, MODEL)
    cdn = [row for row in hub.requests() if util.classify(row) == 'cdn']
    assert not cdn, ('the mount fetched what prefetch had stored:\n%s'
                     % util.fmt_rows(cdn))
    s = status_json(hfmount, m, hub, tmp_path)
    assert s['chunk_hits_disk'] >= math.ceil(info['size'] / CHUNK), s


def test_prefetch_unknown_repo_fails(hub, hfmount, tmp_path):
    r = hfm(hfmount, ['prefetch', '--cache-dir', str(tmp_path / 'c'),
                      'acme/no-such-repo'], hub, tmp_path)
    assert r.returncode != 0 and 'acme/no-such-repo' in r.stderr, (
        r.returncode, r.stderr)


def _run_in_pty(argv, env, timeout):
    """(exit status, output) of argv with a pty as stdin/stdout/stderr."""
    master, slave = pty.openpty()
    p = subprocess.Popen(argv, stdin=slave, stdout=slave, stderr=slave,
                         env=env, start_new_session=True)
    os.close(slave)
    out = b''
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([master], [], [], 0.2)
            if ready:
                try:
                    chunk = os.read(master, 65536)
                except OSError:  # EIO: the child closed the pty
                    break
                if not chunk:
                    break
                out += chunk
            elif p.poll() is not None:
                break
        try:
            code = p.wait(max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            code = None
    finally:
        if p.poll() is None:
            p.kill()
            p.wait(util.EXIT_TIMEOUT)
        os.close(master)
    assert code is not None, '%r did not finish within %s s; output %r' % (
        argv, timeout, out[-2000:])
    return code, out.decode('utf-8', 'replace')


def test_prefetch_on_a_terminal_shows_a_progress_bar(hub, hfmount, tmp_path):
    code, out = _run_in_pty(
        [hfmount, 'prefetch', '--cache-dir', str(tmp_path / 'c'),
         'acme/tiny'], hfm_env(hub, tmp_path), PREFETCH_TIMEOUT)
    assert code == 0, 'prefetch on a pty exited %d:\n%r' % (code, out)
    assert '\r' in out, 'no progress bar (\\r) on a terminal: %r' % out[-500:]
    bars = [s for s in out.split('\r') if re.search(r'\[[#.=> -]+\]', s)]
    assert bars, 'no [####....] bar in %r' % out[-500:]
    last = bars[-1]
    for part in ('16.0 MiB', '/s', 'ETA'):
        assert part in last, 'the progress bar %r lacks %r' % (last, part)


# ------------------------------------------------------------------ status ---

def _status_text(hfmount, m, hub, tmp_path):
    r = hfm(hfmount, ['status', m.mnt], hub, tmp_path)
    assert r.returncode == 0, 'hfmount status exited %d: %s' % (
        r.returncode, r.stderr)
    out = {}
    for line in r.stdout.splitlines():
        parts = line.split()
        if len(parts) >= 2:
            out[parts[0]] = parts[1]
    return out, r.stdout


def test_status_counters_move(mount, hub, hfmount, tmp_path):
    cache = str(tmp_path / 'st-cache')
    m = mount(cache_dir=cache)
    cfg = hub.files(*TINY)['config.json']
    read_bytes(m.path('acme', 'tiny', 'config.json'))

    text, raw = _status_text(hfmount, m, hub, tmp_path)
    for key in ('requests', 'bytes_fetched', 'chunk_hits_memory',
                'chunk_hits_disk', 'chunk_misses', 'errors', 'cache_bytes'):
        assert key in text, 'hfmount status lacks %r:\n%s' % (key, raw)
    assert int(text['requests']) > 0, raw
    assert int(text['bytes_fetched']) >= cfg['size'], raw
    s1 = status_json(hfmount, m, hub, tmp_path)
    assert set(text) <= set(s1), ('status and status --json differ in keys:'
                                  ' %r / %r' % (sorted(text), sorted(s1)))
    xattr = json.loads(util.getxattr(m.mnt, 'user.hf.stats'))
    assert set(xattr) == set(s1)
    for key in ('requests', 'bytes_fetched', 'chunk_misses'):
        assert int(text[key]) == s1[key] == xattr[key], (key, text, s1, xattr)
    assert s1['chunk_misses'] >= 1 and s1['errors'] == 0, s1

    fd = util.open_fd(m.path('acme', 'tiny', MODEL))
    try:
        util.pread(fd, 4096, 0)
        s2 = status_json(hfmount, m, hub, tmp_path)
        assert s2['bytes_fetched'] > s1['bytes_fetched'], (s1, s2)
        assert s2['requests'] > s1['requests'], (s1, s2)
        assert s2['chunk_misses'] > s1['chunk_misses'], (s1, s2)
        # The same block again, once the kernel dropped its pages: a
        # memory hit.
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        util.pread(fd, 4096, 0)
        s3 = status_json(hfmount, m, hub, tmp_path)
        assert s3['chunk_hits_memory'] > s2['chunk_hits_memory'], (s2, s3)
    finally:
        util.close_fd(fd)
    assert m.unmount() == 0

    m2 = mount(cache_dir=cache)
    read_bytes(m2.path('acme', 'tiny', 'config.json'))
    s4 = status_json(hfmount, m2, hub, tmp_path)
    assert s4['chunk_hits_disk'] >= 1 and s4['chunk_misses'] == 0, s4
    assert s4['cache_bytes'] > 0, s4


def test_status_of_a_plain_directory_fails(hub, hfmount, tmp_path):
    r = hfm(hfmount, ['status', str(tmp_path)], hub, tmp_path)
    assert r.returncode != 0 and str(tmp_path) in r.stderr, (r.returncode,
                                                             r.stderr)


# ------------------------------------------------------- cache ls / clean ---

def test_cache_ls_and_clean(mount, hub, hfmount, tmp_path):
    info = hub.files(*TINY)[MODEL]
    m = mount()
    util.check_content(read_bytes(m.path('acme', 'tiny', MODEL)), info,
                       MODEL)
    # Chunks reach the disk through the cache's writer thread, a moment
    # after the read returns: wait (bounded) for all of them.
    chunks = math.ceil(info['size'] / CHUNK)
    deadline = time.monotonic() + 20
    while True:
        entries, text = cache_ls(hfmount, m.cache_dir, hub, tmp_path)
        mine = [e for e in entries if e['path'] == MODEL]
        if (mine and mine[0]['chunks'] >= chunks) or \
                time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert len(mine) == 1, 'cache ls after reading %s:\n%s' % (MODEL, text)
    assert mine[0]['repo'] == 'acme/tiny', text
    assert mine[0]['key'] == info['sha256'][:12], text
    assert mine[0]['chunks'] == chunks, text

    # Issue 11: clean works while the mount is up; the mount goes on and
    # fetches again what it needs.
    r = hfm(hfmount, ['cache', 'clean', '--cache-dir', m.cache_dir], hub,
            tmp_path)
    assert r.returncode == 0, 'cache clean while mounted exited %d: %s' % (
        r.returncode, r.stderr)
    entries, text = cache_ls(hfmount, m.cache_dir, hub, tmp_path)
    assert not entries and ('total 0 B' in text or 'empty' in text), (
        'cache ls after cache clean:\n%s' % text)
    s = status_json(hfmount, m, hub, tmp_path)
    assert s['cache_bytes'] == 0 and s['cache_chunks'] == 0, (
        'the mount still counts the cleaned chunks: %s' % s)
    util.check_content(util.bounded(fu.read_uncached, m.path('acme', 'tiny',
                                                             MODEL)),
                       info, MODEL + ' on the mount after clean')
    assert m.unmount() == 0

    r = hfm(hfmount, ['cache', 'clean', '--cache-dir', m.cache_dir], hub,
            tmp_path)
    assert r.returncode == 0, 'cache clean exited %d: %s' % (r.returncode,
                                                            r.stderr)

    hub.reset()
    m2 = mount(cache_dir=m.cache_dir)
    util.check_content(read_bytes(m2.path('acme', 'tiny', MODEL)), info,
                       MODEL + ' after clean')
    assert [r for r in hub.requests() if util.classify(r) == 'cdn'], (
        'after cache clean the file came from nowhere:\n%s'
        % util.fmt_rows(hub.requests()))
