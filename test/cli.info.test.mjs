// `video-rnn info` reports the LibTorch this installation links, in text and as JSON.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import { backendInfo } from '../dist/index.js';
import { parseJson, runCli } from './cli.run.mjs';

const expected = backendInfo();
const torchPaths = createRequire(import.meta.url)('../scripts/torch-paths.js');

test('info prints the LibTorch version, threads and ffmpeg', async () => {
  const result = await runCli(['info']);
  assert.equal(result.code, 0, result.stderr);
  const abi = expected.cxx11Abi ? 'C\\+\\+11' : 'pre-C\\+\\+11';
  assert.match(result.stdout, new RegExp(`^libtorch:\\s+${expected.torchVersion.replace(/\./g, '\\.')} \\(${abi} libstdc\\+\\+ ABI\\)$`, 'm'));
  assert.match(result.stdout, new RegExp(`^threads:\\s+${expected.threads} `, 'm'));
  assert.match(result.stdout, /^cuda:\s+(no|yes, \d+ devices?)$/m);
  assert.match(result.stdout, /^ffmpeg:\s+\S+/m);
  // The one thing info may warn about is bf16 on a CPU without it (test/cli.precision.test.mjs checks when).
  assert.equal(result.stderr.replace(/^video-rnn: warning: .*no native bf16.*\n/m, ''), '');
});

test('info --json gives the same facts as backendInfo()', async () => {
  const info = parseJson(await runCli(['info', '--json']));
  assert.equal(info.torchVersion, expected.torchVersion);
  assert.equal(info.cuda, expected.cuda);
  assert.equal(info.cudaDevices, expected.cudaDevices);
  assert.equal(info.ffmpeg, expected.ffmpeg);
  assert.deepEqual(info.cpuBf16, expected.cpuBf16);
  assert.match(info.version, /^\d+\.\d+\.\d+/);
  assert.match(info.addon, /video_rnn\.node$/);
});

test('the addon was built with the ABI and the LibTorch version that the build found in Torch\'s own files', () => {
  const found = torchPaths.describe(torchPaths.locate());
  assert.notEqual(found.abi, null, 'TorchConfig.cmake or Python torch states the ABI');
  assert.equal(expected.cxx11Abi, found.abi === 1);
  assert.equal(expected.torchVersion.split('.').slice(0, 2).join('.'), found.version.split('.').slice(0, 2).join('.'));
  assert.ok(found.cxxStandard >= 17);
});

test('--version prints the package version and exits 0', async () => {
  const result = await runCli(['--version']);
  assert.equal(result.code, 0);
  assert.match(result.stdout.trim(), /^\d+\.\d+\.\d+/);
});
