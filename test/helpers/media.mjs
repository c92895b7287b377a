// Shared by the video and data tests: temp folders, rendering real videos with ffmpeg, reading pixels.
import { execFileSync } from 'node:child_process';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { locateFfmpeg } from '../../dist/video/index.js';

/**
 * A fresh folder under the system temp dir. `cleanup` registers its removal: node:test's `after`
 * for a whole file, or a test context (`t`) for one test.
 */
export function temporaryFolder(cleanup, prefix = 'video-rnn-test-') {
  const folder = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  const remove = () => fs.rmSync(folder, { recursive: true, force: true });
  if (typeof cleanup === 'function') cleanup(remove);
  else cleanup.after(remove);
  return folder;
}

export function runFfmpeg(args) {
  execFileSync(locateFfmpeg().ffmpeg, ['-nostdin', '-hide_banner', '-loglevel', 'error', '-y', ...args],
    { stdio: ['ignore', 'ignore', 'pipe'] });
}

export const mpeg4 = ['-c:v', 'mpeg4', '-q:v', '2', '-pix_fmt', 'yuv420p'];

/** Renders a lavfi graph (whose output is labelled [out0] or is a single chain) to `file`. */
export function renderGraph(file, graph, outputArgs = mpeg4) {
  runFfmpeg(['-f', 'lavfi', '-i', graph, ...outputArgs, file]);
  return file;
}

export const colours = {
  red: [255, 0, 0],
  green: [0, 255, 0],
  blue: [0, 0, 255],
  white: [255, 255, 255],
  black: [0, 0, 0],
};

/** A test colour as a lavfi colour argument (ffmpeg's "green" is 0x008000, so names are not used). */
export function lavfiColour(name) {
  return '0x' + colours[name].map((value) => value.toString(16).padStart(2, '0')).join('');
}

/** One solid colour per segment, each `seconds` long at `fps`: the colour tells which time a frame is from. */
export function renderColourSegments(file, { names, seconds, fps, width, height, outputArgs = mpeg4, sourceFormat }) {
  // The colour source draws in YUV unless told otherwise, which shifts pure RGB colours by a level or two.
  const format = sourceFormat === undefined ? '' : `,format=${sourceFormat}`;
  const sources = names.map((name, index) =>
    `color=c=${lavfiColour(name)}:s=${width}x${height}:r=${fps}:d=${seconds}${format}[segment${index}]`);
  const inputs = names.map((_, index) => `[segment${index}]`).join('');
  return renderGraph(file, `${sources.join(';')};${inputs}concat=n=${names.length}:v=1:a=0[out0]`, outputArgs);
}

export function pixel(clip, frame, x, y) {
  const offset = ((frame * clip.height + y) * clip.width + x) * 3;
  return [clip.data[offset], clip.data[offset + 1], clip.data[offset + 2]];
}

/** Lossy 4:2:0 video moves flat colours by a few levels; 24 is far below the distance between test colours. */
export function assertColour(actual, name, where, tolerance = 24) {
  const expected = colours[name];
  const distance = Math.max(...actual.map((value, channel) => Math.abs(value - expected[channel])));
  assert.ok(distance <= tolerance, `${where}: expected ${name} ${JSON.stringify(expected)} but got ${JSON.stringify(actual)}`);
}

/** The test colour nearest to an RGB value. */
export function nearestColour(value) {
  let best = null;
  let bestDistance = Infinity;
  for (const [name, reference] of Object.entries(colours)) {
    const distance = Math.max(...value.map((channel, index) => Math.abs(channel - reference[index])));
    if (distance < bestDistance) {
      best = name;
      bestDistance = distance;
    }
  }
  return best;
}

/** The nearest test colour to the centre pixel of each frame. */
export function frameColours(clip) {
  return Array.from({ length: clip.frames },
    (_, frame) => nearestColour(pixel(clip, frame, clip.width >> 1, clip.height >> 1)));
}

function processTable() {
  const table = [];
  for (const entry of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    let stat;
    try {
      stat = fs.readFileSync(`/proc/${entry}/stat`, 'utf8');
    } catch {
      continue; // exited while we looked
    }
    // Field 2 is "(command)" and may hold spaces; the fields after the closing parenthesis are fixed.
    const close = stat.lastIndexOf(')');
    const command = stat.slice(stat.indexOf('(') + 1, close);
    const fields = stat.slice(close + 2).split(' ');
    table.push({ pid: Number(entry), ppid: Number(fields[1]), command, state: fields[0] });
  }
  return table;
}

/** Child processes of `parentPid` (zombies included), read from /proc: [{ pid, command, state }]. */
export function childProcesses(parentPid = process.pid) {
  return processTable().filter((row) => row.ppid === parentPid).map(({ pid, command, state }) => ({ pid, command, state }));
}

/**
 * Every process below `rootPid`, children's children included: ffmpeg runs as a child of the helper
 * process that starts it (src/video/launcher.ts), a grandchild of this one.
 */
export function descendantProcesses(rootPid = process.pid) {
  const table = processTable();
  const found = [];
  const parents = new Set([rootPid]);
  for (let grew = true; grew;) {
    grew = false;
    for (const row of table) {
      if (parents.has(row.ppid) && !parents.has(row.pid)) {
        parents.add(row.pid);
        found.push({ pid: row.pid, command: row.command, state: row.state });
        grew = true;
      }
    }
  }
  return found;
}

export async function waitFor(predicate, what, timeoutMs = 10_000) {
  const start = Date.now();
  while (!predicate()) {
    if (Date.now() - start > timeoutMs) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

/** Awaits a promise that must reject with a VideoRNNError of this code; returns the error. */
export async function rejectsWithCode(promise, code) {
  let error;
  await assert.rejects(promise, (caught) => {
    error = caught;
    return true;
  });
  assert.equal(error.name, 'VideoRNNError', `expected a VideoRNNError but got ${error.stack}`);
  assert.equal(error.code, code, `expected ${code} but got ${error.code}: ${error.message}`);
  return error;
}

export function throwsWithCode(action, code) {
  let error;
  assert.throws(action, (caught) => {
    error = caught;
    return true;
  });
  assert.equal(error.name, 'VideoRNNError', `expected a VideoRNNError but got ${error.stack}`);
  assert.equal(error.code, code, `expected ${code} but got ${error.code}: ${error.message}`);
  return error;
}
