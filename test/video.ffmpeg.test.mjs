// Locating ffmpeg and ffprobe: option, FFMPEG_PATH, npm packages, PATH, and a clear error when none works.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
// From the package root, where users import them.
import { ffmpegPath, ffprobePath, locateFfmpeg, setFfmpegPath } from '../dist/index.js';
import { temporaryFolder, throwsWithCode } from './helpers/media.mjs';

const folder = temporaryFolder(after);
const videoModule = fileURLToPath(new URL('../dist/video/index.js', import.meta.url));
const real = locateFfmpeg();

/** A folder holding links to the real binaries under the given names. */
function binaryFolder(name, binaries = { ffmpeg: real.ffmpeg, ffprobe: real.ffprobe }) {
  const directory = path.join(folder, name);
  fs.mkdirSync(directory, { recursive: true });
  for (const [binaryName, target] of Object.entries(binaries)) fs.symlinkSync(target, path.join(directory, binaryName));
  return directory;
}

/** Runs the locator in a fresh process with exactly this environment; returns what it found or threw. */
function locateIn(environment, script = 'locate') {
  const code = `
    const video = require(${JSON.stringify(videoModule)});
    let result;
    try {
      const found = video.locateFfmpeg();
      result = { found, ffmpegPath: video.ffmpegPath() };
    } catch (error) {
      result = { code: error.code, message: error.message, ffmpegPath: video.ffmpegPath() };
    }
    ${script === 'decode' ? `
    video.decodeVideo(__filename).then(() => console.log(JSON.stringify({ decoded: true })),
      (error) => console.log(JSON.stringify({ ...result, decodeCode: error.code })));` : 'console.log(JSON.stringify(result));'}
  `;
  const run = spawnSync(process.execPath, ['-e', code], { env: environment, encoding: 'utf8' });
  assert.equal(run.status, 0, run.stderr);
  return JSON.parse(run.stdout);
}

test('in this environment ffmpeg and ffprobe are found and runnable', () => {
  assert.equal(ffmpegPath(), real.ffmpeg);
  assert.equal(ffprobePath(), real.ffprobe);
  assert.match(execFileSync(real.ffmpeg, ['-version'], { encoding: 'utf8' }), /^ffmpeg version/);
  assert.match(execFileSync(real.ffprobe, ['-version'], { encoding: 'utf8' }), /^ffprobe version/);
});

test('FFMPEG_PATH wins over PATH, and ffprobe is taken from the same folder', () => {
  const chosen = binaryFolder('chosen');
  const result = locateIn({ PATH: path.dirname(real.ffmpeg), FFMPEG_PATH: path.join(chosen, 'ffmpeg') });
  assert.equal(result.found.ffmpeg, path.join(chosen, 'ffmpeg'));
  assert.equal(result.found.ffmpegSource, 'environment');
  assert.equal(result.found.ffprobe, path.join(chosen, 'ffprobe'));
  assert.equal(result.found.ffprobeSource, 'sibling');
  assert.equal(result.ffmpegPath, path.join(chosen, 'ffmpeg'));
});

test('FFPROBE_PATH picks ffprobe on its own', () => {
  const lone = binaryFolder('lone-ffmpeg', { ffmpeg: real.ffmpeg });
  const probeOnly = binaryFolder('probe-only', { ffprobe: real.ffprobe });
  const result = locateIn({ PATH: '', FFMPEG_PATH: path.join(lone, 'ffmpeg'), FFPROBE_PATH: path.join(probeOnly, 'ffprobe') });
  assert.equal(result.found.ffprobe, path.join(probeOnly, 'ffprobe'));
  assert.equal(result.found.ffprobeSource, 'environment');
});

test('a broken FFMPEG_PATH is reported, not silently replaced', () => {
  const result = locateIn({ PATH: path.dirname(real.ffmpeg), FFMPEG_PATH: path.join(folder, 'missing', 'ffmpeg') });
  assert.equal(result.code, 'E_NO_FFMPEG');
  assert.match(result.message, /FFMPEG_PATH=.*missing.*is not an executable file/);
  assert.equal(result.ffmpegPath, null);
});

test('an installed @ffmpeg-installer/ffmpeg comes before PATH; ffmpeg-static without its binary is skipped', () => {
  const packaged = binaryFolder('packaged');
  const modules = path.join(folder, 'modules');
  const packageFolder = path.join(modules, '@ffmpeg-installer', 'ffmpeg');
  fs.mkdirSync(packageFolder, { recursive: true });
  fs.writeFileSync(path.join(packageFolder, 'index.js'),
    `module.exports = { path: ${JSON.stringify(path.join(packaged, 'ffmpeg'))}, version: 'test' };\n`);
  const result = locateIn({ PATH: path.dirname(real.ffmpeg), NODE_PATH: modules });
  assert.equal(result.found.ffmpeg, path.join(packaged, 'ffmpeg'));
  assert.equal(result.found.ffmpegSource, 'package');
  assert.equal(result.found.ffprobe, path.join(packaged, 'ffprobe'));
});

test('ffmpeg on PATH is found when nothing else is set', () => {
  const onPath = binaryFolder('on-path');
  const result = locateIn({ PATH: [path.join(folder, 'empty'), onPath].join(path.delimiter) });
  assert.equal(result.found.ffmpeg, path.join(onPath, 'ffmpeg'));
  assert.equal(result.found.ffmpegSource, 'path');
});

test('with no ffmpeg anywhere, E_NO_FFMPEG says how to install one, and decoding fails the same way', () => {
  const result = locateIn({ PATH: path.join(folder, 'empty') }, 'decode');
  assert.equal(result.code, 'E_NO_FFMPEG');
  assert.match(result.message, /apt-get install ffmpeg/);
  assert.match(result.message, /FFMPEG_PATH/);
  assert.match(result.message, /ffmpeg-static/, 'the message lists what was tried');
  assert.equal(result.ffmpegPath, null);
  assert.equal(result.decodeCode, 'E_NO_FFMPEG');
});

test('ffmpeg without ffprobe is E_NO_FFMPEG naming ffprobe', () => {
  const lone = binaryFolder('only-ffmpeg', { ffmpeg: real.ffmpeg });
  const result = locateIn({ PATH: lone });
  assert.equal(result.code, 'E_NO_FFMPEG');
  assert.match(result.message, /^ffprobe was not found/);
  assert.equal(result.ffmpegPath, path.join(lone, 'ffmpeg'), 'backendInfo still reports the ffmpeg it found');
});

test('setFfmpegPath takes precedence and rejects paths that are not executables', () => {
  const chosen = binaryFolder('set-by-option');
  try {
    setFfmpegPath({ ffmpeg: path.join(chosen, 'ffmpeg') });
    assert.equal(ffmpegPath(), path.join(chosen, 'ffmpeg'));
    assert.equal(locateFfmpeg().ffmpegSource, 'option');
    assert.equal(locateFfmpeg().ffprobe, path.join(chosen, 'ffprobe'));
    throwsWithCode(() => setFfmpegPath({ ffmpeg: path.join(folder, 'nothing-here') }), 'E_NO_FFMPEG');
    assert.equal(ffmpegPath(), path.join(chosen, 'ffmpeg'), 'a rejected path leaves the previous choice');
    throwsWithCode(() => setFfmpegPath({ ffmpeg: 42 }), 'E_INVALID_ARGUMENT');
    throwsWithCode(() => setFfmpegPath(null), 'E_INVALID_ARGUMENT');
  } finally {
    setFfmpegPath({ ffmpeg: null, ffprobe: null });
  }
  assert.equal(ffmpegPath(), real.ffmpeg);
});
