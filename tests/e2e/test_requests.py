"""Request budgets read from the fake Hub's request log (/_fake/requests):
cold read, warm read, remount from the cache, lazy listing; no token to the
CDN; hfmount's User-Agent."""

import pytest

import util
from util import classify, count_kinds, fmt_rows, read_bytes

MODEL = ('model', 'acme/tiny')
ALICE = util.TOKENS['alice']


def _since(hub, n0):
    return hub.requests()[n0:]


def _check_cold_budget(rows, hub, allow=()):
    """At most one revision request, one tree page (the root), one resolve
    GET of config.json and its resolve-cache hop; nothing else but the kinds
    in allow."""
    kinds = count_kinds(rows)
    where = '\nrequests:\n' + fmt_rows(rows)
    assert kinds.get('revision', 0) <= 1, 'more than one revision request' \
        + where
    for r in rows:
        if classify(r) == 'revision':
            assert r['path'] in ('/api/models/acme/tiny',
                                 '/api/models/acme/tiny/revision/main'), \
                'unexpected revision request' + where
    trees = [r for r in rows if classify(r) == 'tree']
    assert len(trees) <= 1, 'more than one tree page' + where
    for r in trees:
        assert util.tree_target(r)[1] == '', 'tree request not of the root' \
            + where
    m1 = hub.commit(*MODEL, 'main')
    resolves = [r for r in rows if classify(r) == 'resolve']
    assert len(resolves) <= 1, 'more than one resolve request' + where
    for r in resolves:
        assert r['path'] in ('/acme/tiny/resolve/main/config.json',
                             '/acme/tiny/resolve/%s/config.json' % m1), \
            'unexpected resolve' + where
    assert kinds.get('resolve-cache', 0) <= 1, \
        'more than one resolve-cache hop' + where
    assert kinds.get('cdn', 0) == 0, 'CDN request for a regular file' + where
    other = {k: n for k, n in kinds.items()
             if k not in ('revision', 'tree', 'resolve', 'resolve-cache')
             and k not in allow}
    assert not other, 'requests beyond the budget: %r%s' % (other, where)


def test_cold_cat_budget_single_repo(mount, hub):
    n0 = len(hub.requests())
    m = mount('acme/tiny')
    util.check_content(read_bytes(m.path('config.json')),
                       hub.files(*MODEL, 'main')['config.json'], 'config.json')
    _check_cold_budget(_since(hub, n0), hub)


def test_cold_cat_budget_whole_hub(mount, hub):
    """Same budget; the lookup of the namespace MNT/acme may add namespace
    listings (GET /api/{models,datasets,spaces}?author=acme), nothing else."""
    n0 = len(hub.requests())
    m = mount()
    util.check_content(read_bytes(m.path('acme', 'tiny', 'config.json')),
                       hub.files(*MODEL, 'main')['config.json'], 'config.json')
    rows = _since(hub, n0)
    _check_cold_budget(rows, hub, allow=('list',))
    lists = [r for r in rows if classify(r) == 'list']
    assert len(lists) <= 3, 'namespace lookups:\n' + fmt_rows(lists)


@pytest.mark.parametrize('spec,rel', [
    (None, 'acme/tiny/config.json'),
    ('acme/tiny', 'config.json'),
    (None, 'acme/tiny/model.safetensors'),
    (None, 'datasets/acme/data/data/train.parquet'),
])
def test_second_read_makes_no_request(mount, hub, spec, rel):
    m = mount(spec)
    path = m.path(*rel.split('/'))
    first = read_bytes(path)
    n0 = len(hub.requests())
    second = read_bytes(path)
    assert second == first, 'second read of %s differs' % rel
    rows = _since(hub, n0)
    assert not rows, 'second read of %s made requests:\n%s' % (rel,
                                                               fmt_rows(rows))


@pytest.mark.parametrize('rel', ['acme/tiny/config.json',
                                 'acme/tiny/model.safetensors'])
def test_remount_reads_from_cache(mount, hub, tmp_path, rel):
    cache = tmp_path / 'shared-cache'
    info = hub.files(*MODEL, 'main')[rel.split('/', 2)[2]]
    m = mount(cache_dir=cache)
    util.check_content(read_bytes(m.path(*rel.split('/'))), info, rel)
    code = m.unmount()
    assert code == 0, 'hfmount exited with %s after fusermount3 -u' % code
    n0 = len(hub.requests())
    m2 = mount(cache_dir=cache)
    util.check_content(read_bytes(m2.path(*rel.split('/'))), info,
                       rel + ' after remount')
    rows = _since(hub, n0)
    content = [r for r in rows
               if classify(r) in ('resolve', 'resolve-cache', 'cdn')]
    assert not content, ('remount with the same --cache-dir downloaded %s '
                         'again:\n%s' % (rel, fmt_rows(rows)))


def test_lazy_listing_of_nested_path(mount, hub):
    m = mount()
    util.check_content(
        read_bytes(m.path('acme', 'tiny', 'nested', 'a', 'b', 'deep.txt')),
        hub.files(*MODEL, 'main')['nested/a/b/deep.txt'], 'deep.txt')
    rows = hub.requests()
    trees = [r for r in rows if classify(r) == 'tree']
    where = '\nrequests:\n' + fmt_rows(rows)
    assert not [r for r in trees if util.is_recursive(r)], \
        'recursive listing' + where
    dirs = [util.tree_target(r)[1] for r in trees]
    assert set(dirs) <= {'', 'nested', 'nested/a', 'nested/a/b'}, \
        'listed directories off the path: %r%s' % (sorted(set(dirs)), where)
    assert len(dirs) == len(set(dirs)), 'a directory listed twice' + where


def test_no_authorization_to_cdn_and_no_token_in_log(mount, hub):
    m = mount(token=ALICE)
    for type, repo_id, prefix, rel in (
            ('model', 'acme/tiny', '', 'model.safetensors'),
            ('dataset', 'acme/data', 'datasets', 'data/train.parquet')):
        path = m.path(prefix, *repo_id.split('/'), *rel.split('/'))
        util.check_content(read_bytes(path),
                           hub.files(type, repo_id, 'main')[rel], path)
    rows = hub.requests()
    where = '\nrequests:\n' + fmt_rows(rows)
    cdn = [r for r in rows if r['origin'] == 'cdn']
    assert cdn, 'no CDN request for LFS files' + where
    leaked = [r for r in cdn if r['auth']]
    assert not leaked, 'Authorization sent to the CDN:\n' + fmt_rows(leaked)
    api = [r for r in rows if r['origin'] == 'api']
    assert any(r['auth'] and r.get('token') == ALICE for r in api), (
        'HF_TOKEN was never sent to the API' + where)
    wrong = [r for r in api if r['auth'] and r.get('token') != ALICE]
    assert not wrong, 'other tokens sent:\n' + fmt_rows(wrong)
    for name, text in (('log', m.log_text()), ('stderr', m.stderr_text())):
        assert ALICE not in text, 'the token appears in hfmount\'s ' + name


def test_user_agent(mount, hub):
    """Every request, API and CDN, carries User-Agent hfmount/<version>."""
    m = mount()
    for rel in ('config.json', 'model.safetensors'):
        read_bytes(m.path('acme', 'tiny', rel))
    rows = hub.requests()
    assert {classify(r) for r in rows} >= {'revision', 'tree', 'resolve',
                                           'cdn'}, fmt_rows(rows)
    want = 'hfmount/' + util.project_version()
    bad = [r for r in rows if not (r.get('user_agent') or '').startswith(want)]
    assert not bad, 'User-Agent not starting with %r: %r' % (
        want, sorted({r.get('user_agent') for r in bad}, key=str))
