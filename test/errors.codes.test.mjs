// README's table of error codes is the list users match on: it must name every code the library
// and the server can give, and the HTTP status it states must be the one the server answers.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { VideoRNNError } from '../dist/index.js';
import { HttpError, httpFailure } from '../dist/serve/http/errors.js';
import { repositoryRoot } from './cli.run.mjs';

const read = (file) => fs.readFileSync(path.join(repositoryRoot, file), 'utf8');

/** The string literals of a TypeScript union type `name` in `source`. */
function unionMembers(source, name) {
  const code = source.replace(/\/\*[\s\S]*?\*\//g, '').replace(/\/\/.*$/gm, '');
  const start = code.indexOf(`export type ${name} =`);
  assert.ok(start >= 0, `${name} is declared`);
  const body = code.slice(start, code.indexOf(';', start));
  return [...body.matchAll(/'(E_[A-Z_]+)'/g)].map(([, code]) => code);
}

const libraryCodes = unionMembers(read('src/errors.ts'), 'ErrorCode');
const httpOnlyCodes = unionMembers(read('src/serve/http/errors.ts'), 'HttpOnlyCode');

/** Code -> the HTTP cell of README's "Error codes" table. */
function readmeTable() {
  const readme = read('README.md');
  const section = readme.slice(readme.indexOf('## Error codes'), readme.indexOf('\n## ', readme.indexOf('## Error codes') + 1));
  const rows = new Map();
  for (const [, code, http] of section.matchAll(/^\| `(E_[A-Z_]+)` \|[^|]*\|([^|]*)\|$/gm)) rows.set(code, http.trim());
  return rows;
}

test("README's table of error codes lists every code, and no code that does not exist", () => {
  const rows = readmeTable();
  assert.ok(libraryCodes.length > 15 && httpOnlyCodes.length >= 5, `${libraryCodes.length} + ${httpOnlyCodes.length} codes read`);
  const known = new Set([...libraryCodes, ...httpOnlyCodes]);
  for (const code of known) assert.ok(rows.has(code), `${code} is in README's table`);
  for (const code of rows.keys()) assert.ok(known.has(code), `README's ${code} is a code of the library or the server`);
});

test("the HTTP status in README's table is the one the server answers for that code", () => {
  const rows = readmeTable();
  let checked = 0;
  for (const [code, cell] of rows) {
    const stated = Number(/^\d{3}/.exec(cell)?.[0]);
    if (!Number.isInteger(stated)) continue;
    const error = httpOnlyCodes.includes(code) ? new HttpError(code, 'x') : new VideoRNNError(code, 'x');
    assert.equal(httpFailure(error).status, stated, `${code}: README says ${stated}`);
    checked += 1;
  }
  assert.ok(checked >= 15, `${checked} statuses checked`);
});
