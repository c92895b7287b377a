#!/usr/bin/env node
// Builds the addon from binding.gyp with node-gyp, into build/ (cmake-js builds into build-cmake/).
// Node's headers come from the running Node's own prefix when it ships them, so that nothing is
// downloaded; otherwise node-gyp falls back to its usual lookup.
'use strict';
const fs = require('node:fs');
const path = require('node:path');
const { spawnSync } = require('node:child_process');

const prefix = path.resolve(path.dirname(process.execPath), '..');
// node-gyp reads --jobs (a glued -jN is not passed on to make, which then builds one file at a time).
const args = ['rebuild', '--jobs', String(require('node:os').availableParallelism())];
if (fs.existsSync(path.join(prefix, 'include', 'node', 'node_api.h'))) args.push(`--nodedir=${prefix}`);

let nodeGyp;
try {
  nodeGyp = require.resolve('node-gyp/bin/node-gyp.js');
} catch {
  nodeGyp = path.join(path.dirname(process.execPath), '../lib/node_modules/npm/node_modules/node-gyp/bin/node-gyp.js');
}
const result = spawnSync(process.execPath, [nodeGyp, ...args], { stdio: 'inherit', cwd: path.resolve(__dirname, '..') });
process.exit(result.status ?? 1);
