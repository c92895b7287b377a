// Installing as a dependency: `npm pack`, then a fresh project installs the tarball (the install script
// rebuilds the addon from the shipped sources) and uses it from CommonJS, ESM, TypeScript and the CLI.
// The one test of the package as users install it (its file list, the install script under npm 11's
// script approval, the exports map, the declarations, the bin link): it runs in `npm test`, so CI runs
// it on every change (on the host only, not again in the Debian 13 chroot); `npm run test:package`
// runs it alone. Most of its time is the install script's native build (882 of 979 s on a busy 2-core
// machine, 2026-12-06).
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { temporaryFolder } from './helpers/media.mjs';
import { repositoryRoot } from './cli.run.mjs';

const run = promisify(execFile);
const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm';
const folder = temporaryFolder(after, 'video-rnn-package-');
const project = path.join(folder, 'project');
let packed;
let tarball;

/** Runs a command without a shell; on failure the error carries its output. */
async function exec(file, args, options = {}) {
  try {
    return await run(file, args, { maxBuffer: 64 * 1024 * 1024, ...options });
  } catch (error) {
    error.message += `\nstdout: ${error.stdout}\nstderr: ${error.stderr}`;
    throw error;
  }
}

before(async () => {
  const { stdout } = await exec(npm, ['pack', '--json', '--pack-destination', folder], { cwd: repositoryRoot, timeout: 300_000 });
  [packed] = JSON.parse(stdout);
  tarball = path.join(folder, packed.filename);
});

test('the tarball holds the compiled library, its types, the native sources and the build files', () => {
  const files = new Set(packed.files.map((entry) => entry.path));
  for (const required of ['package.json', 'README.md', 'dist/index.js', 'dist/index.d.ts', 'dist/cli.js', 'dist/model.d.ts',
    'native/video_rnn.cpp', 'native/vgg16.h', 'native/addon/module.cc', 'CMakeLists.txt', 'binding.gyp', 'scripts/torch-paths.js']) {
    assert.ok(files.has(required), `${required} is in the tarball`);
  }
  // Every source file the two build descriptions compile is shipped.
  const gyp = JSON.parse(fs.readFileSync(path.join(repositoryRoot, 'binding.gyp'), 'utf8'));
  for (const source of gyp.targets[0].sources) assert.ok(files.has(source), `${source} (binding.gyp) is in the tarball`);
  // And every script binding.gyp runs while it is read.
  const gypText = fs.readFileSync(path.join(repositoryRoot, 'binding.gyp'), 'utf8');
  for (const [, script] of gypText.matchAll(/node (scripts\/[\w.-]+\.js)/g)) assert.ok(files.has(script), `${script} (run by binding.gyp) is in the tarball`);
  const cmake = fs.readFileSync(path.join(repositoryRoot, 'CMakeLists.txt'), 'utf8');
  for (const [source] of cmake.matchAll(/native\/[\w/]+\.(?:cpp|cc)/g)) assert.ok(files.has(source), `${source} (CMakeLists.txt) is in the tarball`);

  for (const file of files) {
    assert.doesNotMatch(file, /^(build-cmake|build|test|node_modules|bench|src)\//, `${file} is not shipped`);
    assert.doesNotMatch(file, /\.node$/, `${file}: no prebuilt binary`);
    assert.doesNotMatch(file, /\.map$/, `${file}: source maps point at src/, which is not shipped`);
  }
  assert.ok(packed.size < 2 * 1024 * 1024, `tarball of ${packed.size} bytes`);
});

test('a fresh project installs the tarball, and the install script builds the addon', { timeout: 40 * 60_000 }, async () => {
  fs.mkdirSync(project);
  // npm 11 refuses --allow-scripts in a project; the approval lives in package.json. A tarball is
  // approved by its resolved location. ffmpeg-static's script downloads a binary: denied, as offline.
  fs.writeFileSync(path.join(project, 'package.json'), JSON.stringify({
    name: 'uses-video-rnn', version: '1.0.0', private: true,
    allowScripts: { [`file:${tarball}`]: true, 'ffmpeg-static': false },
  }, null, 2));
  // --strict-allow-scripts: an install script not approved above fails the install instead of running.
  await exec(npm, ['install', tarball, '--strict-allow-scripts', '--no-audit', '--no-fund', '--prefer-offline'],
    { cwd: project, timeout: 40 * 60_000 });
  assert.ok(fs.existsSync(path.join(project, 'node_modules', 'video-rnn', 'build-cmake', 'Release', 'video_rnn.node')));
});

const installedAddon = () => path.join(project, 'node_modules', 'video-rnn', 'build-cmake', 'Release', 'video_rnn.node');

test("require('video-rnn') from CommonJS loads the addon built in the project", async () => {
  const script = path.join(project, 'check.cjs');
  fs.writeFileSync(script, `
const videoRnn = require('video-rnn');
const info = videoRnn.backendInfo();
// The shared objects this process mapped: which video_rnn.node was loaded.
const maps = require('fs').readFileSync('/proc/self/maps', 'utf8');
const addons = [...new Set(maps.split('\\n').filter((line) => line.endsWith('video_rnn.node')).map((line) => line.split(/\\s+/).pop()))];
console.log(JSON.stringify({ resolved: require.resolve('video-rnn'), exports: Object.keys(videoRnn).sort(), torch: info.torchVersion, addons }));
`);
  const { stdout } = await exec(process.execPath, [script], { cwd: project, env: { ...process.env, VIDEO_RNN_ADDON: '' } });
  const result = JSON.parse(stdout);
  assert.equal(result.resolved, path.join(project, 'node_modules', 'video-rnn', 'dist', 'index.js'));
  for (const name of ['VideoRNN', 'VideoRNNError', 'backendInfo', 'decodeVideo', 'VideoFolderDataset', 'ManifestDataset', 'makeSyntheticDataset']) {
    assert.ok(result.exports.includes(name), `exports ${name}`);
  }
  assert.match(result.torch, /^\d+\.\d+/);
  assert.deepEqual(result.addons, [fs.realpathSync(installedAddon())]);
});

test('import from an ES module, and a tiny predict on an in-memory Clip', async () => {
  const script = path.join(project, 'check.mjs');
  fs.writeFileSync(script, `
import { VideoRNN, VideoRNNError } from 'video-rnn';
const model = await VideoRNN.create({ classes: ['still', 'moving'], hiddenSize: 8, headSize: 8, frameSize: 32, seed: 3 });
const frames = 3;
const data = new Uint8Array(frames * 32 * 32 * 3).map((_, index) => (index * 7) % 251);
const [prediction] = await model.predict({ data, frames, height: 32, width: 32 });
let code = null;
try { await model.predict({ data, frames: 4, height: 32, width: 32 }); } catch (error) { code = error instanceof VideoRNNError ? error.code : String(error); }
model.dispose();
console.log(JSON.stringify({ prediction, code }));
`);
  const { stdout } = await exec(process.execPath, [script], { cwd: project, env: { ...process.env, VIDEO_RNN_ADDON: '' } });
  const { prediction, code } = JSON.parse(stdout);
  assert.ok(['still', 'moving'].includes(prediction.label));
  const total = prediction.probabilities.still + prediction.probabilities.moving;
  assert.ok(Math.abs(total - 1) < 1e-5, `probabilities sum to ${total}`);
  assert.equal(code, 'E_INVALID_ARGUMENT', 'a Clip whose data does not match its frames is refused');
});

test('a TypeScript file type-checks against the shipped declarations (node16 and bundler resolution)', async () => {
  fs.writeFileSync(path.join(project, 'check.ts'), `
import { VideoRNN, VideoRNNError, backendInfo, type Clip, type ErrorCode, type EvalReport, type Prediction } from 'video-rnn';

export async function classify(clip: Clip): Promise<Prediction[]> {
  const model = await VideoRNN.create({ classes: ['a', 'b'], hiddenSize: 8, frameSize: 32, device: 'cpu' });
  try {
    return await model.predict(clip, { topK: 1 });
  } finally {
    model.dispose();
  }
}

export function describe(error: unknown): ErrorCode | undefined {
  return error instanceof VideoRNNError ? error.code : undefined;
}

export const torch: string = backendInfo().torchVersion;
export const accuracy = (report: EvalReport): number => report.meanClassAccuracy;

// The declarations are precise: these mistakes must be type errors.
// @ts-expect-error hiddenSize is a number
void VideoRNN.create({ classes: ['a', 'b'], hiddenSize: 'large' });
// @ts-expect-error no such device
void VideoRNN.create({ classes: ['a', 'b'], device: 'tpu' });
// @ts-expect-error not one of the error codes
export const wrong: ErrorCode = 'E_WHATEVER';
`);
  const typescript = path.join(repositoryRoot, 'node_modules', 'typescript', 'bin', 'tsc');
  const typeRoots = [path.join(repositoryRoot, 'node_modules', '@types')];
  for (const [module, moduleResolution] of [['node16', 'node16'], ['esnext', 'bundler']]) {
    const config = path.join(project, `tsconfig.${moduleResolution}.json`);
    fs.writeFileSync(config, JSON.stringify({
      compilerOptions: { module, moduleResolution, target: 'ES2022', lib: ['ES2022'], strict: true, noEmit: true,
        typeRoots, types: ['node'] },
      files: ['check.ts'],
    }));
    await exec(process.execPath, [typescript, '-p', config], { cwd: project });
  }
  // And a file with a real error fails, so the check above is not vacuous.
  fs.writeFileSync(path.join(project, 'check.ts'), "import { VideoRNN } from 'video-rnn';\nexport const size: string = VideoRNN.load;\n");
  await assert.rejects(exec(process.execPath, [typescript, '-p', path.join(project, 'tsconfig.node16.json')], { cwd: project }),
    /TS2322/);
});

test('the video-rnn command is linked into node_modules/.bin and runs', async () => {
  const { stdout } = await exec(path.join(project, 'node_modules', '.bin', 'video-rnn'), ['info', '--json'],
    { cwd: project, env: { ...process.env, VIDEO_RNN_ADDON: '' } });
  const info = JSON.parse(stdout);
  assert.equal(info.addon, installedAddon());
  assert.match(info.torchVersion, /^\d+\.\d+/);
});
