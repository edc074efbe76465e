"""Token sources: HF_TOKEN, then the file HF_TOKEN_PATH, then
$HF_HOME/token; the token goes to the API only."""
import errno

import pytest

import util
from util import TOKENS, fmt_rows, read_bytes

PRIVATE = ('model', 'acme/private')


def _read_private(m, hub):
    util.check_content(read_bytes(m.path('acme', 'private', 'config.json')),
                       hub.files(*PRIVATE, 'main')['config.json'],
                       'acme/private/config.json')


def _tokens_sent(hub):
    rows = hub.requests()
    api = [r for r in rows if r['origin'] == 'api']
    return {r.get('token') for r in api if r['auth']}, rows


def _write(path, text):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return str(path)


@pytest.mark.parametrize('source', ['HF_TOKEN', 'HF_TOKEN_PATH', 'HF_HOME'])
def test_token_source(mount, hub, tmp_path, source):
    alice = TOKENS['alice']
    if source == 'HF_TOKEN':
        m = mount(token=alice)
    elif source == 'HF_TOKEN_PATH':
        m = mount(env={'HF_TOKEN_PATH': _write(tmp_path / 'tok' / 'file',
                                               alice + '\n')})
    else:
        _write(tmp_path / 'hf_home' / 'token', alice + '\n')
        m = mount()
    _read_private(m, hub)
    sent, rows = _tokens_sent(hub)
    assert sent == {alice}, 'tokens sent: %r\n%s' % (sent, fmt_rows(rows))


@pytest.mark.parametrize('case', ['HF_TOKEN-over-path', 'path-over-home'])
def test_token_precedence(mount, hub, tmp_path, case):
    alice, bob = TOKENS['alice'], TOKENS['bob']
    if case == 'HF_TOKEN-over-path':
        m = mount(token=alice, env={
            'HF_TOKEN_PATH': _write(tmp_path / 'tok' / 'file', bob)})
    else:
        _write(tmp_path / 'hf_home' / 'token', bob)
        m = mount(env={'HF_TOKEN_PATH': _write(tmp_path / 'tok' / 'file',
                                               alice)})
    _read_private(m, hub)
    sent, rows = _tokens_sent(hub)
    assert sent == {alice}, 'tokens sent: %r\n%s' % (sent, fmt_rows(rows))


def test_no_token_sends_none(mount, hub):
    m = mount()
    util.check_content(read_bytes(m.path('acme', 'tiny', 'config.json')),
                       hub.files('model', 'acme/tiny')['config.json'],
                       'config.json')
    try:
        util.stat(m.path('acme', 'private', 'config.json'))
        pytest.fail('acme/private is visible without a token')
    except OSError as e:
        assert e.errno in (errno.ENOENT, errno.EACCES, errno.EPERM), e
    sent, rows = _tokens_sent(hub)
    assert not sent, 'a token was sent: %r\n%s' % (sent, fmt_rows(rows))
