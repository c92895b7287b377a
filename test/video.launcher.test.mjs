// ffmpeg and ffprobe are started by a small helper process (src/video/launcher.ts), so that this
// process never forks itself while it holds a model: same frames as starting them here, nothing
// started from this process, and the helper neither outlives this process nor keeps it alive.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { ChildProcess, execFile } from 'node:child_process';
import path from 'node:path';
import { promisify } from 'node:util';
import { decodeVideo, probeVideo } from '../dist/video/index.js';
import { prepareProcessStarts } from '../dist/video/process.js';
import { descendantProcesses, rejectsWithCode, renderColourSegments, renderGraph, temporaryFolder, waitFor } from './helpers/media.mjs';

const run = promisify(execFile);
const folder = temporaryFolder(after);
const root = new URL('..', import.meta.url).pathname;
let good;
let slow;

before(() => {
  good = renderColourSegments(path.join(folder, 'good.mp4'), { names: ['red', 'green', 'blue'], seconds: 1, fps: 5, width: 48, height: 32 });
  slow = renderGraph(path.join(folder, 'slow.mp4'), 'color=c=gray:s=32x32:r=1:d=60');
});

const helpers = (rootPid = process.pid) => descendantProcesses(rootPid).filter((child) => child.command.startsWith('video-rnn-ff'));
const alive = (pid) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

test('decoding and probing start no process from this one, and give the frames that starting ffmpeg here gives', async () => {
  prepareProcessStarts();
  await waitFor(() => helpers().length === 1, 'the helper process');
  const started = [];
  const spawn = ChildProcess.prototype.spawn;
  ChildProcess.prototype.spawn = function counted(options) {
    started.push(options.file);
    return spawn.call(this, options);
  };
  let clip;
  let info;
  try {
    clip = await decodeVideo(good, { size: 32, maxFrames: 8 });
    info = await probeVideo(good);
  } finally {
    ChildProcess.prototype.spawn = spawn;
  }
  assert.deepEqual(started, [], 'no process started from this one');
  assert.equal(info.width, 48);
  const script = `
    import { decodeVideo } from './dist/video/index.js';
    const clip = await decodeVideo(${JSON.stringify(good)}, { size: 32, maxFrames: 8 });
    process.stdout.write(JSON.stringify({ frames: clip.frames, data: Buffer.from(clip.data).toString('base64') }));`;
  const { stdout } = await run(process.execPath, ['--input-type=module', '-e', script],
    { cwd: root, env: { ...process.env, VIDEO_RNN_TUNING: 'launcher=0' }, maxBuffer: 1 << 26 });
  const here = JSON.parse(stdout);
  assert.equal(clip.frames, here.frames);
  assert.ok(Buffer.from(clip.data).equals(Buffer.from(here.data, 'base64')), 'the same bytes either way');
});

test('a helper that dies fails the decodes in flight with E_VIDEO_DECODE, and the next decode starts a new one', async () => {
  const decoding = decodeVideo(slow, { fps: 1000, size: 64, maxFrames: 4 });
  await waitFor(() => descendantProcesses().some((child) => child.command === 'ffmpeg'), 'ffmpeg to start');
  const [first] = helpers();
  const orphan = descendantProcesses().find((child) => child.command === 'ffmpeg').pid;
  process.kill(first.pid, 'SIGKILL');
  const error = await rejectsWithCode(decoding, 'E_VIDEO_DECODE');
  assert.match(error.message, /helper process that starts ffmpeg exited \(SIGKILL\)/);
  assert.equal((await decodeVideo(good, { size: 32 })).frames, 15);
  assert.notEqual(helpers()[0]?.pid, first.pid);
  // The dead helper's ffmpeg loses the reader of its output and ends.
  await waitFor(() => !alive(orphan) || /^Z/.test(stateOf(orphan)), 'the orphaned ffmpeg to end', 10_000);
});

test('an idle helper does not keep a process alive, and goes when that process is killed mid-decode, ffmpeg with it', async () => {
  const idle = `
    import { decodeVideo } from './dist/video/index.js';
    const clip = await decodeVideo(${JSON.stringify(good)}, { size: 32 });
    console.log(clip.frames);`;
  const finished = await run(process.execPath, ['--input-type=module', '-e', idle], { cwd: root, timeout: 30_000 });
  assert.equal(finished.stdout.trim(), '15', 'exited on its own after decoding');

  const busy = `
    import { decodeVideo } from './dist/video/index.js';
    decodeVideo(${JSON.stringify(slow)}, { fps: 1000, size: 64, maxFrames: 4 }).catch(() => undefined);
    setInterval(() => undefined, 1000);`;
  const { spawn } = await import('node:child_process');
  const child = spawn(process.execPath, ['--input-type=module', '-e', busy], { cwd: root, stdio: 'ignore' });
  try {
    await waitFor(() => descendantProcesses(child.pid).some((row) => row.command === 'ffmpeg'), 'ffmpeg under the child', 20_000);
    const left = descendantProcesses(child.pid).map((row) => row.pid);
    assert.equal(left.length, 2, 'the helper and its ffmpeg');
    child.kill('SIGKILL');
    await waitFor(() => left.every((pid) => !alive(pid) || /^Z/.test(stateOf(pid))), 'the helper and ffmpeg to end', 10_000);
  } finally {
    child.kill('SIGKILL');
  }
});

function stateOf(pid) {
  try {
    return descendantProcesses(1).find((row) => row.pid === pid)?.state ?? '';
  } catch {
    return '';
  }
}
