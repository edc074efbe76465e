"""Permission failures (issue 4): every cause gives the reader's errno (the
real `cat` prints "Permission denied", or "No such file or directory" where
the Hub hides that a repo exists) and exactly one log line naming the repo,
the file where there is one, the HTTP status, the Hub's X-Error-Code, and the
cause with its fix; whoami-v2 is asked at most once per token and only after
a failure; the token never shows in a log, in `ps`, in the cache or on a CDN
request; and the fix (a grant, a new token scope, a new token in the token
file) works at the next read, without a remount.

Token sources themselves are test_auth.py's. The expected Hub answers are
hub-api.md §5's; each test also checks that the fake Hub answered that way,
so a drift of the fake shows up as such and not as an hfmount failure.
"""
import collections
import errno
import http.client
import os
import re
import time
import urllib.parse

import pytest

import util
from util import TOKENS, fmt_rows

GATED = ('model', 'meta-llama/Llama-3.1-8B-Instruct')
GATED_DS = ('dataset', 'acme/gated-data')
PRIVATE = ('model', 'acme/private')
DISABLED = ('model', 'acme/disabled')
PUBLIC = ('model', 'acme/tiny')

# tests/fakehub/README.md, "Tokens"
TOK = {
    'alice': TOKENS['alice'],
    'bob': TOKENS['bob'],
    'alice_fg_nogated': 'hf_alice_fg_nogated_0123456789',
    'alice_fg_norepo': 'hf_alice_fg_norepo_0123456789a',
    'carol': 'hf_carol_read_0123456789abcdef',
    'org_policy': 'hf_org_policy_0123456789abcdef',
    'bogus': 'hf_bogus_not_issued_0123456789ab',
}

# hub-api.md §5 / §6: the scope names as the Hub's token page words them
SCOPE_GATED = ('Read access to contents of all public gated repos you can '
               'access')
SCOPE_CONTENT = 'Read access to contents'
NO_TOKEN = 'no Hugging Face token found: set HF_TOKEN or run `hf auth login`'
REJECTED = 'the token was rejected (invalid or revoked)'

CATS = 20            # `cat` runs per failing case
RECHECK_WAIT = 2.5   # > hfmount's token re-read interval (2 s)

MSG = {  # hub-api.md §5, verbatim
    'login': 'Invalid username or password.',
    'bad-token': 'Invalid credentials in Authorization header',
    'not-found': 'Repository not found',
    'disabled': 'Access to this resource is disabled.',
    'fg-gated': ('Please enable access to public gated repositories in your '
                 'fine-grained token settings to view this repository.'),
    'org-policy': ('Due to the organization token policy, your token needs '
                   'to be approved by the organization before you can access '
                   'this resource.'),
}


def _gate_login(repo):
    return ('Access to %s %s is restricted. You must have access to it and be '
            'authenticated to access it. Please log in.' % repo)


def _gate_not_authorized(repo):
    return ('Access to %s %s is restricted and you are not in the authorized '
            'list. Visit https://huggingface.co/%s to ask for access.'
            % (repo[0], repo[1], _page(repo)))


def _gate_pending(repo):
    return ('Your request to access %s %s is awaiting a review from the repo '
            'authors.' % repo)


def _page(repo):
    """The repo's web page path (what ENDPOINT/<page> opens)."""
    return {'model': '', 'dataset': 'datasets/',
            'space': 'spaces/'}[repo[0]] + repo[1]


def _name_re(repo):
    """The repo id as a regex, optionally with its web prefix (a dataset
    may be named datasets/acme/gated-data, as its page is)."""
    prefix = {'model': '', 'dataset': 'datasets/', 'space': 'spaces/'}[repo[0]]
    return '(?:%s)?%s' % (re.escape(prefix), re.escape(repo[1]))


def _not_granted(repo, user):
    return re.compile('access to %s has not been granted to %s'
                      % (_name_re(repo), re.escape(user)))


def _dir(m, repo):
    parts = {'model': [], 'dataset': ['datasets'],
             'space': ['spaces']}[repo[0]]
    return m.path(*(parts + repo[1].split('/')))


# --------------------------------------------------------------- helpers ---

def _write_token(path, token):
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + '.new')
    tmp.write_text(token + '\n')
    os.replace(str(tmp), str(path))  # as `hf auth login` leaves it: whole


def _mount(mount, tmp_path, source, token, **kw):
    """Mounts with token from source: None (no token anywhere), 'HF_TOKEN',
    'HF_TOKEN_PATH', '--token-file' or 'HF_HOME'. Returns (mount, token
    file path or None)."""
    if source is None:
        assert token is None
        return mount(**kw), tmp_path / 'hf_home' / 'token'
    if source == 'HF_TOKEN':
        return mount(token=token, **kw), None
    if source == 'HF_TOKEN_PATH':
        p = tmp_path / 'tokdir' / 'token'
        _write_token(p, token)
        return mount(env={'HF_TOKEN_PATH': str(p)}, **kw), p
    if source == '--token-file':
        p = tmp_path / 'tokdir' / 'hf-token'
        _write_token(p, token)
        return mount(args=['--token-file', str(p)], **kw), p
    if source == 'HF_HOME':
        p = tmp_path / 'hf_home' / 'token'
        _write_token(p, token)
        return mount(**kw), p
    raise AssertionError(source)


def _cat(path):
    return util.run_cmd(['cat', path], timeout=util.FS_TIMEOUT)


def _cat_fails(path, err):
    r = _cat(path)
    want = '%s: %s' % (path, os.strerror(err))
    assert r.returncode != 0 and want in r.stderr and not r.stdout, (
        '`cat %s`: expected %r on stderr, got status %d, stderr %r, stdout '
        '%d bytes' % (path, os.strerror(err), r.returncode, r.stderr,
                      len(r.stdout)))


def _cat_ok(path, hub, repo, rel):
    r = util.run_cmd(['cat', path], timeout=util.FS_TIMEOUT,
                     encoding='latin-1')
    assert r.returncode == 0, ('`cat %s` failed after the fix: %r'
                               % (path, r.stderr))
    util.check_content(r.stdout.encode('latin-1'),
                       hub.files(*repo)[rel], '%s/%s' % (repo[1], rel))


def _read_all(path):
    with open(path, 'rb') as f:
        return f.read()


def _many_reads(m, hub, repo, rel, err, only=None):
    """CATS `cat`s of rel, then whole-file reads of every file of the repo
    (or of only; LFS files included) and, where open succeeds, preads all
    over the largest one: each fails with err."""
    top = _dir(m, repo)
    for _ in range(CATS):
        _cat_fails(os.path.join(top, rel), err)
    files = hub.files(*repo)
    if only:
        files = {n: files[n] for n in only}
    for name in sorted(files):
        util.expect_errno(err, _read_all, os.path.join(top, name),
                          what='read whole %s/%s' % (repo[1], name))
    big = max(files, key=lambda n: files[n]['size'])
    path = os.path.join(top, big)
    try:
        fd = util.open_fd(path)
    except OSError as e:
        assert e.errno == err, 'open %s: %s' % (path, e)
        return
    try:
        size = files[big]['size']
        for i in range(8):
            util.expect_errno(err, os.pread, fd, 65536, size * i // 8,
                              what='pread %s @%d' % (big, size * i // 8))
    finally:
        util.close_fd(fd)


def _error_lines(m):
    return [l for l in m.log_text().splitlines()
            if re.search(r'\bhfmount\[\d+\] error: ', l)]


def _one_line(m, repo):
    lines = [l for l in _error_lines(m) if repo[1] in l]
    assert len(lines) == 1, (
        'expected exactly one error line naming %s, got %d:\n%s\n--- log:\n%s'
        % (repo[1], len(lines), '\n'.join(lines), util.tail(m.log_text())))
    return lines[0]


def _probe(hub, row):
    """Replays a failed request of hfmount (same method, path, query and
    token, no redirect followed): (status, X-Error-Code, X-Error-Message)
    as the fake Hub answers it."""
    u = urllib.parse.urlsplit(hub.api)
    c = http.client.HTTPConnection(u.hostname, u.port,
                                   timeout=util.HTTP_TIMEOUT)
    try:
        headers = {}
        if row.get('token'):
            headers['Authorization'] = 'Bearer ' + row['token']
        target = row['path'] + ('?' + row['query'] if row.get('query') else '')
        c.request(row['method'], target, headers=headers)
        r = c.getresponse()
        r.read()
        return (r.status, r.getheader('X-Error-Code'),
                r.getheader('X-Error-Message'))
    finally:
        c.close()


def _all_tokens():
    return sorted(set(TOK.values()))


def _check_secrets(m, rows):
    """No token in any log, stdout/stderr, argv (`ps`), cache file; no
    Authorization on the CDN; whoami-v2 at most once per token and only
    after a failure with that token."""
    texts = {'log file': m.log_text(), 'stderr': m.stderr_text(),
             'stdout': util.read_text(m.stdout_path)}
    with open('/proc/%d/cmdline' % m.proc.pid, 'rb') as f:
        texts['/proc/PID/cmdline'] = f.read().decode('utf-8', 'replace')
    ps = util.run_cmd(['ps', '-ww', '-o', 'args=', '-p', str(m.proc.pid)])
    assert 'hfmount' in ps.stdout, 'ps does not show hfmount: %r' % ps.stdout
    texts['ps -ww -o args'] = ps.stdout
    for tok in _all_tokens():
        for where, text in texts.items():
            assert tok not in text, 'token %s... appears in %s' % (tok[:8],
                                                                   where)
    for where in ('log file', 'stderr'):
        assert not re.search(r'Bearer\s+\S', texts[where]), (
            'an Authorization value appears in the %s' % where)
    if m.cache_dir and os.path.isdir(m.cache_dir):
        needles = [t.encode() for t in _all_tokens()]
        for d, _, names in os.walk(m.cache_dir):
            for n in names:
                p = os.path.join(d, n)
                try:
                    with open(p, 'rb') as f:
                        data = f.read()
                except OSError:
                    continue
                for t in needles:
                    assert t not in data, ('token %s... stored in the cache '
                                           'file %s' % (t[:8].decode(), p))

    cdn_auth = [r for r in rows if r['origin'] == 'cdn' and r['auth']]
    assert not cdn_auth, ('requests to the CDN carried Authorization:\n%s'
                          % fmt_rows(cdn_auth))
    who = collections.Counter(r.get('token') for r in rows
                              if util.classify(r) == 'whoami')
    over = {t: n for t, n in who.items() if n > 1}
    assert not over, ('whoami-v2 asked more than once per token: %s\n%s'
                      % ({(t or 'none')[:12]: n for t, n in over.items()},
                         fmt_rows(rows)))
    for i, r in enumerate(rows):
        if util.classify(r) != 'whoami':
            continue
        before = [p for p in rows[:i] if p.get('token') == r.get('token')
                  and p['status'] in (401, 403, 404)
                  and util.classify(p) != 'whoami']
        assert before, ('whoami-v2 asked before any failure with that '
                        'token:\n%s' % fmt_rows(rows))


def _check_line(line, hub, case, probe, endpoint):
    status, code, message = probe
    repo = case['repo']
    assert re.search(r"(?:'|\s)%s(?:'|\s)" % _name_re(repo), line), (
        'the line does not name the repo %s: %s' % (repo[1], line))
    if case['at'] == 'read':
        assert "'%s'" % case['file'] in line, (
            'the line does not name the file %r: %s' % (case['file'], line))
    assert 'HTTP %d' % status in line, (
        'the line does not name the HTTP status %d: %s' % (status, line))
    if code:
        assert 'X-Error-Code %s' % code in line, (
            'the line does not name the X-Error-Code %s: %s' % (code, line))
    else:
        assert 'X-Error-Code' not in line, (
            'the Hub sent no X-Error-Code, the line names one: %s' % line)
    for url in re.findall(re.escape(endpoint) + r'(/[^\s"\')]*)', line):
        url = url.rstrip('.,;:')
        assert url in ('/settings/tokens', '/' + _page(repo)), (
            'the line sends the user to %s%s, which is neither the repo\'s '
            'page %s/%s nor %s/settings/tokens: %s'
            % (endpoint, url, endpoint, _page(repo), endpoint, line))
    for phrase in case['phrases'](endpoint):
        if hasattr(phrase, 'search'):
            assert phrase.search(line), ('the line lacks /%s/: %s'
                                         % (phrase.pattern, line))
        else:
            assert phrase in line, ('the line lacks %r: %s' % (phrase, line))
    if case.get('quote'):
        quoted = '"%s"' % message
        assert quoted in line, ("the line does not quote the Hub's "
                                "X-Error-Message %s: %s" % (quoted, line))
        rest = line.replace(quoted, '')
        for word in case['named']:
            assert word in rest, ('the line does not name the cause (%r '
                                  'outside the quoted message): %s'
                                  % (word, line))


# ---------------------------------------------------------------- causes ---

def _request_at(repo):
    return lambda ep: ['request it at %s/%s' % (ep, _page(repo))]


CASES = {
    'no-token-gated-model': dict(
        repo=GATED, file='config.json', at='read', source=None, token=None,
        errno=errno.EACCES, hub=(401, 'GatedRepo', _gate_login(GATED)),
        phrases=lambda ep: [NO_TOKEN], fix=('token', 'alice')),
    'no-token-gated-dataset': dict(
        repo=GATED_DS, file='data.csv', at='read', source=None, token=None,
        errno=errno.EACCES, hub=(401, 'GatedRepo', _gate_login(GATED_DS)),
        phrases=lambda ep: [NO_TOKEN], fix=('token', 'alice')),
    'no-token-private': dict(
        repo=PRIVATE, file='config.json', at='lookup', source=None,
        token=None, errno=errno.ENOENT, hub=(401, None, MSG['login']),
        phrases=lambda ep: [NO_TOKEN], fix=('token', 'alice')),
    'invalid-token': dict(
        repo=GATED, file='config.json', at='any', source='HF_TOKEN_PATH',
        token='bogus', errno=errno.EACCES, hub=(401, None, MSG['bad-token']),
        phrases=lambda ep: [REJECTED], fix=('token', 'alice')),
    'revoked-token': dict(
        repo=GATED, file='config.json', at='any', source='--token-file',
        token='alice', setup=lambda h: h.token(TOK['alice'], valid=False),
        errno=errno.EACCES, hub=(401, None, MSG['bad-token']),
        phrases=lambda ep: [REJECTED], fix=('token', 'bob-granted')),
    'not-granted-model': dict(
        repo=GATED, file='config.json', at='read', source='HF_TOKEN',
        token='bob', errno=errno.EACCES,
        hub=(403, 'GatedRepo', _gate_not_authorized(GATED)),
        phrases=lambda ep: ([_not_granted(GATED, 'bob')]
                            + _request_at(GATED)(ep)),
        whoami=True, fix=('grant', 'bob')),
    'not-granted-dataset': dict(
        repo=GATED_DS, file='data.csv', at='read', source='HF_TOKEN',
        token='bob', errno=errno.EACCES,
        hub=(403, 'GatedRepo', _gate_not_authorized(GATED_DS)),
        phrases=lambda ep: ([_not_granted(GATED_DS, 'bob')]
                            + _request_at(GATED_DS)(ep)),
        whoami=True, fix=('grant', 'bob')),
    'fine-grained-no-gated-scope': dict(
        repo=GATED, file='config.json', at='read', source='HF_TOKEN',
        token='alice_fg_nogated', errno=errno.EACCES,
        hub=(403, None, MSG['fg-gated']),
        phrases=lambda ep: ['"%s"' % SCOPE_GATED, ep + '/settings/tokens'],
        fix=('scope', 'alice_fg_nogated')),
    'fine-grained-no-content-scope': dict(
        repo=PRIVATE, file='config.json', at='lookup',
        source='HF_TOKEN_PATH', token='alice_fg_norepo', errno=errno.EACCES,
        hub=(404, 'RepoNotFound', MSG['not-found']),
        phrases=lambda ep: ['"%s' % SCOPE_CONTENT, ep + '/settings/tokens'],
        whoami=True, fix=('token', 'alice')),
    'gate-request-pending': dict(
        repo=GATED, file='config.json', at='read', source='HF_TOKEN',
        token='carol', errno=errno.EACCES,
        hub=(403, 'GatedRepo', _gate_pending(GATED)), quote=True,
        named=['awaiting'], phrases=lambda ep: [],
        fix=('grant', 'carol')),
    'disabled-repo': dict(
        repo=DISABLED, file='config.json', at='lookup', source='HF_TOKEN',
        token='bob', errno=errno.EACCES, hub=(403, None, MSG['disabled']),
        quote=True, named=['disabled'], phrases=lambda ep: [], fix=None),
    'org-token-policy': dict(
        repo=PRIVATE, file='config.json', at='lookup', source='HF_HOME',
        token='org_policy', errno=errno.EACCES,
        hub=(403, 'any', MSG['org-policy']), quote=True,
        named=['organization', 'policy'], phrases=lambda ep: [],
        fix=('token', 'alice')),
    'other-403': dict(
        repo=PUBLIC, file='config.json', at='read', source='HF_TOKEN',
        token='alice', errno=errno.EACCES,
        setup=lambda h: h.fault('/resolve/', action='status', status=403,
                                origin='api', count=10000, headers={
                                    'X-Error-Message':
                                        'Forbidden: quota of the moon.'}),
        hub=(403, None, 'Forbidden: quota of the moon.'), quote=True,
        named=[], phrases=lambda ep: [], fix=None,
        only=['config.json', 'model.safetensors']),
}


def _failing_row(rows, case):
    """hfmount's last failed request on the case's repo."""
    repo_part = urllib.parse.quote(case['repo'][1])
    bad = [r for r in rows if r['origin'] == 'api'
           and r['status'] in (401, 403, 404) and repo_part in r['path']]
    assert bad, ('no failed request on %s:\n%s'
                 % (case['repo'][1], fmt_rows(rows)))
    return bad[-1]


def _apply_fix(hub, case, token_path):
    kind, arg = case['fix']
    if kind == 'grant':
        hub.grant(case['repo'][1], arg)
    elif kind == 'scope':  # the user ticks the box on the token's page
        hub.token(TOK[arg], can_read_gated=True)
    elif kind == 'token':  # `hf auth login` with a working token
        assert token_path is not None, 'a token file source is needed'
        if arg == 'bob-granted':
            hub.grant(case['repo'][1], 'bob')
            arg = 'bob'
        _write_token(token_path, TOK[arg])
        time.sleep(RECHECK_WAIT)
    else:
        raise AssertionError(kind)


@pytest.mark.parametrize('name', sorted(CASES))
def test_permission_cause(mount, hub, tmp_path, name):
    case = CASES[name]
    repo = case['repo']
    if case.get('setup'):
        case['setup'](hub)
    token = TOK[case['token']] if case['token'] else None
    m, token_path = _mount(mount, tmp_path, case['source'], token)
    err = case['errno']

    _many_reads(m, hub, repo, case['file'], err, case.get('only'))
    rows = hub.requests()
    line = _one_line(m, repo)
    probe = _probe(hub, _failing_row(rows, case))

    # the fake Hub answers as hub-api.md §5 says the real Hub does
    status, code, message = case['hub']
    got = probe if code != 'any' else (probe[0], 'any', probe[2])
    assert got == (status, code, message), (
        'the fake Hub answered %r where hub-api.md §5 says %r: a fake Hub '
        'problem, not an hfmount one' % (probe, case['hub']))

    _check_line(line, hub, case, probe, hub.api)
    if case.get('whoami'):
        who = [r for r in rows if util.classify(r) == 'whoami']
        assert len(who) == 1, ('naming the user takes one whoami-v2:\n%s'
                               % fmt_rows(rows))
    _check_secrets(m, rows)

    if not case['fix']:
        return
    _apply_fix(hub, case, token_path)
    top = _dir(m, repo)
    _cat_ok(os.path.join(top, case['file']), hub, repo, case['file'])
    for rel, info in sorted(hub.files(*repo).items()):
        util.check_content(util.read_bytes(os.path.join(top, rel)), info,
                           '%s/%s after the fix' % (repo[1], rel))
    if case['fix'][0] == 'token':
        changed = [l for l in m.log_text().splitlines()
                   if 'token' in l and 'changed' in l]
        assert changed, ('no log line says the token changed:\n%s'
                         % util.tail(m.log_text()))
    assert len([l for l in _error_lines(m) if repo[1] in l]) == 1, (
        'the fixed read logged another error:\n%s' % util.tail(m.log_text()))
    _check_secrets(m, hub.requests())


# ------------------------------------------------- fixes without remount ---

@pytest.mark.parametrize('repo', [GATED, GATED_DS], ids=['model', 'dataset'])
def test_grant_works_at_next_read(mount, hub, tmp_path, repo):
    """(a) access granted on the website: the next cat succeeds."""
    m, _ = _mount(mount, tmp_path, 'HF_TOKEN', TOK['bob'])
    top = _dir(m, repo)
    files = hub.files(*repo)
    first = 'config.json' if 'config.json' in files else 'data.csv'
    _cat_fails(os.path.join(top, first), errno.EACCES)
    hub.grant(repo[1], 'bob')
    _cat_ok(os.path.join(top, first), hub, repo, first)
    for rel, info in sorted(files.items()):  # LFS files through the CDN
        util.check_content(util.read_bytes(os.path.join(top, rel)), info,
                           '%s/%s' % (repo[1], rel))
    rows = hub.requests()
    if repo == GATED:
        assert any(r['origin'] == 'cdn' for r in rows), (
            'the LFS file was not read from the CDN:\n%s' % fmt_rows(rows))
    _check_secrets(m, rows)


@pytest.mark.parametrize('source', ['--token-file', 'HF_TOKEN_PATH',
                                    'HF_HOME'])
def test_new_token_in_file_works_without_remount(mount, hub, tmp_path,
                                                 source):
    """(b) bob's token in the file, then alice's read token (granted): after
    the re-read interval the next cat succeeds, the log says the token
    changed and never shows either token."""
    m, token_path = _mount(mount, tmp_path, source, TOK['bob'])
    top = _dir(m, GATED)
    _cat_fails(os.path.join(top, 'config.json'), errno.EACCES)
    _write_token(token_path, TOK['alice'])
    time.sleep(RECHECK_WAIT)
    _cat_ok(os.path.join(top, 'config.json'), hub, GATED, 'config.json')
    info = hub.files(*GATED)['model.safetensors']
    util.check_content(util.read_bytes(os.path.join(top, 'model.safetensors')),
                       info, 'model.safetensors with the new token')
    changed = [l for l in m.log_text().splitlines()
               if 'token' in l and 'changed' in l]
    assert len(changed) == 1, ('expected one line saying the token changed:'
                               '\n%s' % util.tail(m.log_text()))
    rows = hub.requests()
    after = [r for r in rows if r['origin'] == 'api' and r['auth']
             and r['t'] > rows[0]['t']]
    assert after and after[-1]['token'] == TOK['alice'], (
        'the new token is not the one sent:\n%s' % fmt_rows(rows))
    _check_secrets(m, rows)


def test_token_change_needs_a_failure_and_the_interval(mount, hub, tmp_path):
    """The file is re-read when a failure is about to be reported, not more
    often than every 2 s: a new token written right after a failure is not
    used by an immediate retry, but is after the interval."""
    m, token_path = _mount(mount, tmp_path, 'HF_TOKEN_PATH', TOK['bob'])
    top = _dir(m, GATED)
    path = os.path.join(top, 'config.json')
    time.sleep(RECHECK_WAIT)  # the mount's own read of the token is old
    t0 = time.monotonic()
    _cat_fails(path, errno.EACCES)  # re-reads the file now: still bob
    _write_token(token_path, TOK['alice'])
    r = _cat(path)
    if time.monotonic() - t0 < 1.5:  # surely within 2 s of the re-read
        assert r.returncode != 0 and 'Permission denied' in r.stderr, (
            'the token file was re-read again within 2 s: %r' % r.stderr)
    time.sleep(RECHECK_WAIT)
    _cat_ok(path, hub, GATED, 'config.json')
    _check_secrets(m, hub.requests())


# ------------------------------------------------------------ log level ---

def test_log_level_error_keeps_the_error_lines(mount, hub, tmp_path):
    m, _ = _mount(mount, tmp_path, 'HF_TOKEN', TOK['bob'],
                  log_level='error')
    top = _dir(m, GATED)
    for _ in range(5):
        _cat_fails(os.path.join(top, 'config.json'), errno.EACCES)
    line = _one_line(m, GATED)
    assert 'has not been granted to bob' in line, line
    others = [l for l in m.log_text().splitlines()
              if l.strip() and not re.search(r'\] error: ', l)]
    assert not others, ('--log-level error let other levels through:\n%s'
                        % '\n'.join(others[:20]))
    _check_secrets(m, hub.requests())


def test_single_repo_mount_of_a_gated_repo(mount, hub, tmp_path):
    """`hfmount REPO MNT`: the repo info is not gated, the mount comes up,
    and reading names the cause the same way."""
    m = mount(spec=GATED[1], token=TOK['bob'])
    for _ in range(5):
        _cat_fails(m.path('config.json'), errno.EACCES)
    util.expect_errno(errno.EACCES, _read_all, m.path('model.safetensors'))
    line = _one_line(m, GATED)
    for phrase in ['HTTP 403', 'X-Error-Code GatedRepo', "'config.json'",
                   'access to %s has not been granted to bob' % GATED[1],
                   'request it at %s/%s' % (hub.api, GATED[1])]:
        assert phrase in line, 'the line lacks %r: %s' % (phrase, line)
    _check_secrets(m, hub.requests())


@pytest.mark.parametrize('ns', ['alice', 'acme'])
def test_missing_repo_with_a_scoped_token_is_not_a_scope_problem(
        mount, hub, tmp_path, ns):
    """A fine-grained token that has "Read access to contents" of the user's
    (or org's) repos, on a repo that does not exist there: ENOENT, and no
    line blaming a missing permission (whoami-v2's `scoped` says it is
    there)."""
    m, _ = _mount(mount, tmp_path, 'HF_TOKEN', TOK['alice_fg_nogated'])
    path = m.path(ns, 'no-such-repo', 'config.json')
    for _ in range(3):
        _cat_fails(path, errno.ENOENT)
    blame = [l for l in m.log_text().splitlines() if SCOPE_CONTENT in l]
    assert not blame, ('a missing repo was blamed on the token\'s scopes:\n%s'
                       '\n--- requests:\n%s' % ('\n'.join(blame),
                                                fmt_rows(hub.requests())))
    _check_secrets(m, hub.requests())


@pytest.mark.parametrize('repo_id', ['acme/no-such-repo', 'alice/secret'])
def test_no_token_on_a_hidden_repo_names_the_missing_token(mount, hub,
                                                           repo_id):
    """Without a token the Hub hides private repos (from listings too), so a
    repo it does not show may be private: ENOENT and the no-token line, even
    in a namespace with no public repo (alice's)."""
    m = mount()
    path = m.path(*(repo_id.split('/') + ['config.json']))
    for _ in range(CATS):
        _cat_fails(path, errno.ENOENT)
    lines = [l for l in _error_lines(m) if NO_TOKEN in l]
    # In a namespace with no public repo the kernel's lookup stops at the
    # namespace (the Hub cannot tell hfmount it exists), so the line names
    # the namespace: the repo below it is never looked up.
    ns = repo_id.split('/')[0]
    named = ("'%s'" % repo_id in lines[0] or
             "'%s'" % ns in lines[0]) if lines else False
    assert len(lines) == 1 and named, (
        'expected one no-token line naming %s, got:\n%s\n--- requests:\n%s'
        % (repo_id, '\n'.join(_error_lines(m)) or '(no error line)',
           fmt_rows(hub.requests())))
    _check_secrets(m, hub.requests())
