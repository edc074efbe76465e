"""DuckDB queries parquet files straight from an hfmount mount, and hfmount
fetches only the bytes a query needs.

DuckDB (@duckdb/node-api, driven by tests/loaders/duckdb/query.mjs, no
network: extension autoinstall/autoload off) writes a few parquet files into
a temporary directory: big.parquet (~50 MiB of hash-derived doubles, 6 row
groups of ~1.6 MB column chunks), small.parquet, tiny.parquet and
extra/more.parquet, plus a README.md. The repo_hub fixture publishes that
directory as the dataset acme/tables. Then:

- the same SELECTs (count, exact sums, a GROUP BY over every byte of every
  column, a filter, globs *.parquet and **/*.parquet) give the same rows from
  the mount as from the local copy, and the values the generator implies;
- on a fresh mount with an empty cache, a query touching one column of one
  row group of big.parquet makes CDN range requests that cover the footer
  and that column chunk (byte ranges from parquet_metadata() on the local
  copy), and fetch nothing of the file before that column chunk's 4 MiB
  cache chunk: more than half of the file is never fetched, so a
  filesystem that downloaded whole files would fail. (After the column
  chunk, readahead may fetch on: DuckDB reads it in sequence, so the
  kernel's and hfmount's readahead go forward by whole chunks; issue 10's
  small requests are meant to tighten that.)

The script needs `npm ci --prefix tests/loaders/duckdb` first; without
node_modules these tests fail and say so.
"""
import json
import os
import re
import shutil

import pytest

import util

JS_DIR = os.path.join(util.REPO, 'tests', 'loaders', 'duckdb')
NODE_TIMEOUT = 120
REPO_KEY = 'datasets/acme/tables'
MiB = 1 << 20

BIG_ROWS = 1200000
BIG_ROW_GROUP = 200000
CHUNK = 4 * MiB         # hfmount's cache chunk (cache/cache.h)
PROBE_ROW_GROUP = 3     # of 0..5: a middle one
PROBE_COLUMN = 'c'

# A double in [0, 1) from a 64-bit hash: deterministic and incompressible.
_RAND = "(hash(i, '%s') >> 11)::DOUBLE / 9007199254740992.0"


@pytest.fixture(scope='module')
def node():
    exe = shutil.which('node')
    if exe is None:
        pytest.fail('node is not on PATH: install nodejs and npm '
                    '(apt-get install nodejs npm), then '
                    '`npm ci --prefix tests/loaders/duckdb`', pytrace=False)
    if not os.path.isdir(os.path.join(JS_DIR, 'node_modules', '@duckdb',
                                      'node-api')):
        pytest.fail('tests/loaders/duckdb/node_modules/@duckdb/node-api is '
                    'missing: run `npm ci --prefix tests/loaders/duckdb` '
                    'first', pytrace=False)
    return exe


def duckdb(node, *statements):
    """Runs the statements in one in-memory DuckDB; one list of row dicts
    per statement."""
    r = util.run_cmd([node, os.path.join(JS_DIR, 'query.mjs')]
                     + list(statements), timeout=NODE_TIMEOUT, cwd=JS_DIR)
    assert r.returncode == 0, 'query.mjs exited %d:\n%s\n%s\nSQL:\n%s' % (
        r.returncode, r.stdout[-3000:], r.stderr[-3000:],
        '\n'.join(statements))
    out = json.loads(r.stdout.strip().splitlines()[-1])
    assert len(out) == len(statements), out
    return out


def sql_str(path):
    return "'" + path.replace("'", "''") + "'"


@pytest.fixture(scope='module')
def tables(node, tmp_path_factory):
    """The published directory, written by DuckDB, and big.parquet's
    layout: {dir, big, size, footer: (start, end), groups: [...]}."""
    d = str(tmp_path_factory.mktemp('acme_tables'))
    os.mkdir(os.path.join(d, 'extra'))
    big = os.path.join(d, 'big.parquet')
    cols = ', '.join('%s AS %s' % (_RAND % c, c) for c in 'abcde')
    duckdb(
        node,
        "COPY (SELECT i AS id, %s, (i %% 7)::INTEGER AS cat "
        "FROM range(%d) t(i)) TO %s (FORMAT parquet, ROW_GROUP_SIZE %d)"
        % (cols, BIG_ROWS, sql_str(big), BIG_ROW_GROUP),
        "COPY (SELECT i AS id, 'item-' || i AS name, "
        "(i * 1.25)::DECIMAL(10,2) AS price, DATE '2024-01-01' + i::INTEGER "
        "AS day FROM range(1000) t(i)) TO %s (FORMAT parquet, "
        "ROW_GROUP_SIZE 300)" % sql_str(os.path.join(d, 'small.parquet')),
        "COPY (SELECT * FROM (VALUES (1, 'one'), (2, 'two'), (3, 'three')) "
        "v(id, name)) TO %s (FORMAT parquet)"
        % sql_str(os.path.join(d, 'tiny.parquet')),
        "COPY (SELECT 5000 + i AS id, 'more-' || i AS name FROM range(500) "
        "t(i)) TO %s (FORMAT parquet)"
        % sql_str(os.path.join(d, 'extra', 'more.parquet')))
    with open(os.path.join(d, 'README.md'), 'w') as f:
        f.write('# acme/tables\n\nParquet files written by DuckDB.\n')

    size = os.path.getsize(big)
    assert 40 * MiB <= size <= 60 * MiB, 'big.parquet is %d bytes' % size
    with open(big, 'rb') as f:
        f.seek(size - 8)
        tail = f.read(8)
    assert tail[4:] == b'PAR1', tail
    footer = (size - 8 - int.from_bytes(tail[:4], 'little'), size)

    rows = duckdb(node, "SELECT row_group_id, row_group_num_rows, "
                  "path_in_schema, data_page_offset, dictionary_page_offset, "
                  "total_compressed_size FROM parquet_metadata(%s) "
                  "ORDER BY row_group_id, column_id" % sql_str(big))[0]
    groups = []
    for r in rows:
        g = int(r['row_group_id'])
        if g == len(groups):
            groups.append({'rows': int(r['row_group_num_rows']),
                           'columns': {}})
        start = int(r['dictionary_page_offset'] or r['data_page_offset'])
        groups[g]['columns'][r['path_in_schema']] = (
            start, start + int(r['total_compressed_size']))
    assert len(groups) >= 5, 'big.parquet has %d row groups' % len(groups)
    chunk = groups[PROBE_ROW_GROUP]['columns'][PROBE_COLUMN]
    assert chunk[1] - chunk[0] > MiB, chunk  # a part worth telling apart
    return {'dir': d, 'big': big, 'size': size, 'footer': footer,
            'groups': groups}


def test_query_script_makes_no_network_access(node):
    """query.mjs never lets DuckDB fetch an extension, not even when SQL
    asks (the configuration is locked)."""
    got = duckdb(node, "SELECT current_setting('autoinstall_known_extensions')"
                 " AS i, current_setting('autoload_known_extensions') AS l, "
                 "current_setting('lock_configuration') AS k")[0]
    assert got == [{'i': False, 'l': False, 'k': True}], got
    r = util.run_cmd([node, os.path.join(JS_DIR, 'query.mjs'),
                      'SET autoinstall_known_extensions = true'],
                     timeout=NODE_TIMEOUT, cwd=JS_DIR)
    assert r.returncode == 1 and 'locked' in r.stderr, (r.returncode,
                                                          r.stderr)


def published(repo_hub, tables):
    return repo_hub({REPO_KEY: tables['dir']})


def mounted_dir(m):
    return m.path('datasets', 'acme', 'tables')


# ------------------------------------------------------- same results ---

QUERIES = [
    "SELECT count(*) AS n, sum(id) AS s, min(a) AS mn, max(e) AS mx "
    "FROM '{root}/big.parquet'",
    # every byte of every column, summed exactly (HUGEINT), per group
    "SELECT cat, count(*) AS n, sum(hash(id, a, b, c, d, e)) AS h "
    "FROM '{root}/big.parquet' GROUP BY cat ORDER BY cat",
    "SELECT id, a, cat FROM '{root}/big.parquet' "
    "WHERE id % 99991 = 5 AND a < 0.5 ORDER BY id",
    "SELECT id, name, price, day FROM '{root}/small.parquet' "
    "WHERE price > 1240 ORDER BY id",
    "SELECT parse_filename(filename) AS f, count(*) AS n, sum(id) AS s "
    "FROM read_parquet('{root}/*.parquet', filename=true, union_by_name=true)"
    " GROUP BY ALL ORDER BY ALL",
    "SELECT parse_filename(filename) AS f, count(*) AS n "
    "FROM read_parquet('{root}/**/*.parquet', filename=true, "
    "union_by_name=true) GROUP BY ALL ORDER BY ALL",
]


def run_queries(node, root):
    return duckdb(node, *[q.replace('{root}', root.replace("'", "''"))
                          for q in QUERIES])


def test_duckdb_queries_match_local_copy(mount, repo_hub, node, tables):
    h = published(repo_hub, tables)
    m = mount(endpoint=h.api)
    root = mounted_dir(m)
    names = set(util.listdir(root))
    assert {'README.md', 'big.parquet', 'extra', 'small.parquet',
            'tiny.parquet'} <= names, names
    local = run_queries(node, tables['dir'])
    remote = run_queries(node, root)
    for q, want, got in zip(QUERIES, local, remote):
        assert got == want, 'from the mount:\n  %s\ngave %r\nlocal copy ' \
            'gave %r' % (q, got[:5], want[:5])

    # The local answers are the generator's (the comparison is not vacuous).
    total, groups, filtered, small, glob1, glob2 = local
    assert total[0]['n'] == str(BIG_ROWS)
    assert total[0]['s'] == str(BIG_ROWS * (BIG_ROWS - 1) // 2)
    assert [int(g['n']) for g in groups] == [
        len(range(c, BIG_ROWS, 7)) for c in range(7)]
    assert filtered and all(int(r['id']) % 99991 == 5 and r['a'] < 0.5
                            for r in filtered), filtered
    assert [r['id'] for r in small] == [str(i) for i in range(993, 1000)]
    assert small[0] == {'id': '993', 'name': 'item-993', 'price': '1241.25',
                        'day': '2026-09-20'}, small[0]
    assert [(r['f'], r['n']) for r in glob1] == [
        ('big.parquet', str(BIG_ROWS)), ('small.parquet', '1000'),
        ('tiny.parquet', '3')], glob1
    assert [(r['f'], r['n']) for r in glob2] == [
        ('big.parquet', str(BIG_ROWS)), ('more.parquet', '500'),
        ('small.parquet', '1000'), ('tiny.parquet', '3')], glob2


# ------------------------------------------------------- bytes fetched ---

def fetched_intervals(rows, size):
    """[start, end) of every CDN GET in rows, clipped to size; a GET without
    Range is the whole file."""
    out = []
    for r in rows:
        if r.get('origin') != 'cdn' or r.get('method') != 'GET':
            continue
        assert r.get('status') in (200, 206), util.fmt_rows([r])
        rng = r.get('range')
        if not rng:
            out.append((0, size))
            continue
        mo = re.match(r'bytes=(\d+)-(\d*)$', rng)
        assert mo, 'unexpected Range %r' % rng
        end = int(mo.group(2)) + 1 if mo.group(2) else size
        out.append((int(mo.group(1)), min(end, size)))
    return out


def merged(intervals):
    out = []
    for s, e in sorted(intervals):
        if out and s <= out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], e))
        else:
            out.append((s, e))
    return out


def covers(intervals, span):
    return any(s <= span[0] and span[1] <= e for s, e in merged(intervals))


def test_one_column_chunk_fetches_footer_and_chunk_only(mount, repo_hub, node,
                                                         tables):
    h = published(repo_hub, tables)
    m = mount(endpoint=h.api)  # a fresh, empty cache directory
    big = os.path.join(mounted_dir(m), 'big.parquet')
    util.stat(big)
    before = len(h.requests())

    groups = tables['groups']
    first = sum(g['rows'] for g in groups[:PROBE_ROW_GROUP])
    last = first + groups[PROBE_ROW_GROUP]['rows'] - 1
    q = ("SELECT count(*) AS n, sum({c}) AS s FROM read_parquet({p}, "
         "file_row_number=true) WHERE file_row_number BETWEEN %d AND %d"
         % (first, last)).replace('{c}', PROBE_COLUMN)
    got = duckdb(node, q.replace('{p}', sql_str(big)))[0]
    want = duckdb(node, q.replace('{p}', sql_str(tables['big'])))[0]
    assert got == want
    assert got[0]['n'] == str(groups[PROBE_ROW_GROUP]['rows'])

    rows = h.requests()[before:]
    cdn = [r for r in rows if r.get('origin') == 'cdn']
    assert len({r['path'] for r in cdn}) == 1, util.fmt_rows(cdn)
    got_iv = fetched_intervals(cdn, tables['size'])
    total = sum(e - s for s, e in got_iv)
    chunk = groups[PROBE_ROW_GROUP]['columns'][PROBE_COLUMN]
    summary = ('big.parquet %d bytes; footer %r, column %s of row group %d '
               '%r; fetched %d bytes in %d CDN GETs: %r'
               % (tables['size'], tables['footer'], PROBE_COLUMN,
                  PROBE_ROW_GROUP, chunk, total, len(got_iv), got_iv))
    print(summary)
    assert covers(got_iv, tables['footer']), 'footer not fetched: ' + summary
    assert covers(got_iv, chunk), 'column chunk not fetched: ' + summary
    skip = chunk[0] // CHUNK * CHUNK
    before = sum(min(e, skip) - s for s, e in got_iv if s < skip)
    assert before == 0, ('fetched %d bytes before the column chunk\'s cache '
                         'chunk (at %d): %s' % (before, skip, summary))
    assert skip * 2 > tables['size'], (
        'the probe must leave over half the file unfetched: ' + summary)
