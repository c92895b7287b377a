// Renders a class-per-folder dataset of H.264 clips with ffmpeg's lavfi sources: a textured background
// and a coloured shape whose motion is the class (moving left, right, up or down, zooming in or out,
// a bar turning clockwise or anticlockwise). Every clip draws its own colours, sizes, speeds, start
// and length from a seeded generator, so a run renders the same files every time.
//   node bench/render-dataset.mjs OUT_DIR [--clips 600] [--seed 1] [--min-seconds 5] [--max-seconds 10]
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
// The library's seeded generator (mulberry32), so the dataset does not depend on Math.random.
import { createRandom } from '../dist/data/random.js';

export const motionClasses = ['left', 'right', 'up', 'down', 'zoom-in', 'zoom-out', 'turn-cw', 'turn-ccw'];

const hex = (value) => Math.round(value).toString(16).padStart(2, '0');
const colour = (random, low, high) => `0x${[0, 1, 2].map(() => hex(low + random() * (high - low))).join('')}`;

/** The ffmpeg arguments of one clip: two lavfi inputs and a filter graph that moves the shape. */
function clipArguments(clip, output) {
  const { width, height, fps, seconds, motion, size, speed, background, foreground } = clip;
  const duration = seconds.toFixed(2);
  const inputs = ['-f', 'lavfi', '-i', `color=c=${background}:s=${width}x${height}:r=${fps}:d=${duration}`,
    '-f', 'lavfi', '-i', `color=c=${foreground}:s=${size}x${motion.startsWith('turn') ? 2 * Math.round(size / 6) : size}:r=${fps}:d=${duration}`];
  // The background's noise is fixed (not temporal): texture the CNN sees, no motion of its own.
  const ground = `[0:v]noise=alls=12:all_seed=${clip.seed}[ground]`;
  let shape;
  let place;
  const x0 = clip.start.x;
  const y0 = clip.start.y;
  switch (motion) {
    case 'left': case 'right': case 'up': case 'down': {
      const sign = motion === 'left' || motion === 'up' ? -1 : 1;
      // Wraps around the frame so that a long clip keeps moving the same way.
      const span = motion === 'left' || motion === 'right' ? `(W+w)` : `(H+h)`;
      const along = `mod(${motion === 'left' || motion === 'right' ? x0 : y0}+${sign * speed}*t+${span}*100,${span})-${motion === 'left' || motion === 'right' ? 'w' : 'h'}`;
      shape = '[1:v]format=rgba[shape]';
      place = motion === 'left' || motion === 'right' ? `x='${along}':y=${y0}` : `x=${x0}:y='${along}'`;
      break;
    }
    case 'zoom-in': case 'zoom-out': {
      // The scale goes from 0.3 to 1.6 of the shape (or back) and starts again: one cycle per `cycle` seconds.
      const cycle = (2 + 3 * clip.phase).toFixed(2);
      const grow = `(0.3+1.3*mod(t,${cycle})/${cycle})`;
      const factor = motion === 'zoom-in' ? grow : `(1.9-${grow})`;
      shape = `[1:v]format=rgba,scale=w='trunc(iw*${factor}/2)*2':h='trunc(ih*${factor}/2)*2':eval=frame[shape]`;
      place = `x='${x0}+(${size}-w)/2':y='${y0}+(${size}-h)/2'`;
      break;
    }
    default: {
      const sign = motion === 'turn-cw' ? 1 : -1;
      const radians = (speed / 60).toFixed(3);
      shape = `[1:v]format=rgba,rotate=a='${sign}*${radians}*t':c=black@0:ow='hypot(iw,ih)':oh='hypot(iw,ih)'[shape]`;
      place = `x=${x0}:y=${y0}`;
    }
  }
  const graph = `${ground};${shape};[ground][shape]overlay=${place}:shortest=1:eval=frame,format=yuv420p[out]`;
  return ['-hide_banner', '-loglevel', 'error', '-y', ...inputs, '-filter_complex', graph, '-map', '[out]',
    '-c:v', 'libx264', '-preset', 'veryfast', '-crf', '23', '-g', String(fps * 2), '-threads', '1', '-movflags', '+faststart', output];
}

/** What each clip is drawn with, class after class in turn. */
export function planDataset({ clips = 600, seed = 1, width = 320, height = 240, fps = 25, minSeconds = 5, maxSeconds = 10 } = {}) {
  const random = createRandom(seed);
  const plan = [];
  for (let index = 0; index < clips; index += 1) {
    const motion = motionClasses[index % motionClasses.length];
    const size = 2 * Math.round((48 + random() * 48) / 2);
    plan.push({
      id: `${motion}-${String(Math.floor(index / motionClasses.length)).padStart(4, '0')}`,
      motion, width, height, fps, size, seed: 1 + Math.floor(random() * 1e6),
      seconds: minSeconds + random() * (maxSeconds - minSeconds),
      speed: Math.round(30 + random() * 60),
      phase: random(),
      // Inside the centre square that decoding crops to (frames are cut to their shorter side).
      start: { x: Math.round(Math.max(0, (width - height) / 2) + random() * (Math.min(width, height) - size * 1.5)),
        y: Math.round(Math.max(0, (height - width) / 2) + random() * (Math.min(width, height) - size * 1.5)) },
      background: colour(random, 20, 120),
      foreground: colour(random, 140, 255),
    });
  }
  return plan;
}

function run(args) {
  return new Promise((resolve, reject) => {
    const child = spawn(process.env.FFMPEG_PATH ?? 'ffmpeg', args, { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (text) => { stderr += text; });
    child.on('error', reject);
    child.on('close', (code) => (code === 0 ? resolve() : reject(new Error(`ffmpeg exited with ${code}: ${stderr.slice(-2000)}`))));
  });
}

/**
 * Renders the plan into folder/<class>/<id>.mp4 (files already there are kept, so an interrupted
 * render goes on). Resolves with the plan, each clip with its file.
 */
export async function renderDataset(folder, options = {}) {
  const plan = planDataset(options);
  const concurrency = options.concurrency ?? os.availableParallelism();
  for (const motion of motionClasses) fs.mkdirSync(path.join(folder, motion), { recursive: true });
  let next = 0;
  const worker = async () => {
    while (next < plan.length) {
      const clip = plan[next];
      next += 1;
      clip.file = path.join(folder, clip.motion, `${clip.id}.mp4`);
      if (fs.existsSync(clip.file)) continue;
      const partial = `${clip.file}.part.mp4`;
      await run(clipArguments(clip, partial));
      fs.renameSync(partial, clip.file);
      options.onClip?.(clip);
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, concurrency) }, worker));
  return plan;
}

if (import.meta.url === pathToFileURL(process.argv[1]).href) {
  const value = (name, fallback) => {
    const index = process.argv.indexOf(`--${name}`);
    return index < 0 ? fallback : Number(process.argv[index + 1]);
  };
  const folder = process.argv[2];
  if (!folder || folder.startsWith('--')) {
    console.error('usage: node bench/render-dataset.mjs OUT_DIR [--clips 600] [--seed 1] [--min-seconds 5] [--max-seconds 10]');
    process.exit(2);
  }
  const started = performance.now();
  let done = 0;
  const plan = await renderDataset(folder, { clips: value('clips', 600), seed: value('seed', 1), minSeconds: value('min-seconds', 5),
    maxSeconds: value('max-seconds', 10), onClip: () => { done += 1; if (done % 20 === 0) process.stderr.write(`rendered ${done}\n`); } });
  console.log(`${plan.length} clips in ${folder} (${((performance.now() - started) / 1000).toFixed(1)} s)`);
}
