// query.mjs - run SQL statements in an in-memory DuckDB and print their
// results as one JSON line; tests/e2e/test_duckdb.py drives it to write
// parquet files and to query them on an hfmount mount and on a local copy.
//
// Usage: node query.mjs SQL [SQL ...]
// Output (stdout, one line): [[row, ...], ...], one array of row objects per
// statement, in order. Values go through DuckDB's JSON converter, so BIGINT,
// HUGEINT and DECIMAL come out as strings, never as lossy JS numbers.
// A failing statement prints "query.mjs: statement N: message" on stderr
// and exits 1.
//
// No network: extension autoinstall and autoload are off (parquet is built
// into the bindings), community extensions are refused, and the
// configuration is locked before any statement runs, so SQL cannot turn
// them back on.
import { DuckDBInstance } from '@duckdb/node-api';

const statements = process.argv.slice(2);
if (statements.length === 0) {
  process.stderr.write('usage: node query.mjs SQL [SQL ...]\n');
  process.exit(2);
}

const instance = await DuckDBInstance.create(':memory:', {
  autoinstall_known_extensions: 'false',
  autoload_known_extensions: 'false',
  allow_community_extensions: 'false',
});
const conn = await instance.connect();
await conn.run('SET lock_configuration = true');

const results = [];
let failed = false;
for (const [i, sql] of statements.entries()) {
  try {
    const reader = await conn.runAndReadAll(sql);
    results.push(reader.getRowObjectsJson());
  } catch (e) {
    process.stderr.write(`query.mjs: statement ${i + 1}: ${e.message}\n`);
    failed = true;
    break;
  }
}
conn.closeSync();
instance.closeSync();
if (failed) process.exit(1);
process.stdout.write(JSON.stringify(results) + '\n');
