import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { VideoRNNError, checkInteger, checkString, invalidArgument, throwIfAborted } from '../errors';
import { onAbort } from '../video/abort';
import { locateFfmpeg } from '../video/ffmpeg';
import { runFfmpeg } from '../video/process';
import { Semaphore } from '../video/semaphore';
import { type FileEntry, compareNames } from './dataset';
import { VideoFolderDataset } from './folder';
import { createRandom, hashSeed, randomBetween, randomInteger } from './random';

/** The direction the square moves in; only the order of the frames tells them apart. */
export type MotionClass = 'left' | 'right' | 'up' | 'down';
export const motionClasses: readonly MotionClass[] = Object.freeze(['left', 'right', 'up', 'down']);

export interface SyntheticOptions {
  /** Default: all four directions. */
  classes?: MotionClass[];
  /** Clips per class (default 8). */
  perClass?: number;
  /** Shortest clip in frames (default 6). */
  minFrames?: number;
  /** Longest clip in frames (default 14). */
  maxFrames?: number;
  /** Frame width and height in pixels, even (default 64). */
  size?: number;
  /** Frame rate written into the files (default 8). */
  fps?: number;
  seed?: number;
  /** Clips rendered at once (default: the number of cores). */
  concurrency?: number;
  signal?: AbortSignal;
}

export interface SyntheticClip {
  id: string;
  label: number;
  motion: MotionClass;
  frames: number;
  /** Top-left corner of the square in the first and in the last frame, in pixels. */
  start: { x: number; y: number };
  end: { x: number; y: number };
  squareSize: number;
  /** Grey levels, 0-255. */
  background: number;
  foreground: number;
}

/** A class-per-folder dataset of rendered clips, with the parameters each clip was drawn with. */
export class SyntheticDataset extends VideoFolderDataset {
  constructor(root: string, classes: string[], entries: FileEntry[],
    readonly clips: readonly SyntheticClip[], readonly fps: number) {
    super(root, classes, entries);
  }
}

interface Settings {
  classes: MotionClass[];
  perClass: number;
  minFrames: number;
  maxFrames: number;
  size: number;
  fps: number;
  seed: number;
  concurrency: number;
  signal?: AbortSignal;
}

const optionNames = ['classes', 'perClass', 'minFrames', 'maxFrames', 'size', 'fps', 'seed', 'concurrency', 'signal'];

function parseOptions(options: unknown): Settings {
  if (typeof options !== 'object' || options === null || Array.isArray(options)) {
    throw invalidArgument('options', 'an object', options);
  }
  const record = options as Record<string, unknown>;
  for (const key of Object.keys(record)) {
    if (!optionNames.includes(key)) throw invalidArgument('option name', `one of ${optionNames.join(', ')}`, key);
  }
  const classes = record.classes ?? [...motionClasses];
  if (!Array.isArray(classes) || classes.length < 1 || new Set(classes).size !== classes.length ||
      !classes.every((name) => motionClasses.includes(name as MotionClass))) {
    throw invalidArgument('classes', `non-empty array of distinct names from ${motionClasses.join(', ')}`, classes);
  }
  const minFrames = checkInteger('minFrames', record.minFrames ?? 6, 2, 1000);
  const size = checkInteger('size', record.size ?? 64, 16, 1024);
  if (size % 2 !== 0) throw invalidArgument('size', 'even integer (4:2:0 video needs even sizes)', size);
  const fps = record.fps ?? 8;
  if (typeof fps !== 'number' || !Number.isFinite(fps) || fps <= 0 || fps > 120) {
    throw invalidArgument('fps', 'number greater than 0 and at most 120', fps);
  }
  const signal = record.signal;
  if (signal !== undefined && !(signal instanceof AbortSignal)) throw invalidArgument('signal', 'an AbortSignal', signal);
  return {
    classes: classes as MotionClass[],
    perClass: checkInteger('perClass', record.perClass ?? 8, 1, 100_000),
    minFrames,
    maxFrames: checkInteger('maxFrames', record.maxFrames ?? Math.max(14, minFrames), minFrames, 1000),
    size,
    fps,
    seed: checkInteger('seed', record.seed ?? 0, 0, 4294967295),
    concurrency: checkInteger('concurrency', record.concurrency ?? os.availableParallelism(), 1, 256),
    signal,
  };
}

/**
 * One clip's parameters, from its own random stream. The square is a third of the frame and crosses
 * 55-100 % of the free width at a random place; opposite classes draw from the same paths run in
 * reverse, so a single frame looks alike in every class and only the order of frames tells them apart.
 */
function drawClip(settings: Settings, motion: MotionClass, index: number): Omit<SyntheticClip, 'id' | 'label'> {
  const random = createRandom(hashSeed(settings.seed, `${motion}/${index}`));
  const frames = randomInteger(random, settings.minFrames, settings.maxFrames);
  const squareSize = Math.round(settings.size / 3);
  const free = settings.size - squareSize;
  const travel = randomBetween(random, 0.55, 1) * free;
  const low = randomBetween(random, 0, free - travel);
  const across = randomBetween(random, 0, free);
  const background = randomInteger(random, 0, 90);
  const foreground = randomInteger(random, 200, 255);
  const round = (value: number): number => Math.round(value * 100) / 100;
  const [from, to] = motion === 'right' || motion === 'down' ? [low, low + travel] : [low + travel, low];
  const horizontal = motion === 'left' || motion === 'right';
  return {
    motion, frames, squareSize, background, foreground,
    start: horizontal ? { x: round(from), y: round(across) } : { x: round(across), y: round(from) },
    end: horizontal ? { x: round(to), y: round(across) } : { x: round(across), y: round(to) },
  };
}

function grey(level: number): string {
  const hex = level.toString(16).padStart(2, '0');
  return `0x${hex}${hex}${hex}`;
}

/**
 * The lavfi graph: a grey background and a square source, overlaid at a position linear in t.
 * Positions follow t rather than the frame number n, which ffmpeg 5.1's overlay counts from 1.
 */
function renderGraph(clip: Omit<SyntheticClip, 'id' | 'label'>, size: number, fps: number): string {
  const seconds = (clip.frames - 1) / fps;
  const speed = (from: number, to: number): string => ((to - from) / seconds).toFixed(4);
  const rate = String(fps);
  return `color=c=${grey(clip.background)}:s=${size}x${size}:r=${rate}[background];` +
    `color=c=${grey(clip.foreground)}:s=${clip.squareSize}x${clip.squareSize}:r=${rate}[square];` +
    `[background][square]overlay=x='${clip.start.x.toFixed(2)}+(${speed(clip.start.x, clip.end.x)})*t'` +
    `:y='${clip.start.y.toFixed(2)}+(${speed(clip.start.y, clip.end.y)})*t':format=rgb:shortest=1[out0]`;
}

async function renderClip(ffmpeg: string, graph: string, frames: number, file: string, signal: AbortSignal): Promise<void> {
  // Written under a temporary name and renamed, so an interrupted run never leaves a half file under the real name.
  const partial = path.join(path.dirname(file), `.${path.basename(file)}.partial`);
  try {
    await runFfmpeg({
      binary: ffmpeg,
      // The graph's source filters make the frames: no input file, and no lavfi input device.
      inputOptions: ['-nostdin', '-hide_banner', '-loglevel', 'error'],
      // One thread and bit-exact flags make the bytes depend only on the parameters.
      outputOptions: ['-filter_complex', graph, '-map', '[out0]', '-frames:v', String(frames), '-c:v', 'mpeg4', '-q:v', '2', '-pix_fmt', 'yuv420p',
        '-threads', '1', '-fflags', '+bitexact', '-flags:v', '+bitexact', '-map_metadata', '-1', '-f', 'mp4'],
      output: { file: partial },
      signal,
      timeoutMs: 60_000,
      what: `Rendering "${file}"`,
    });
    await fs.promises.rename(partial, file);
  } catch (error) {
    await fs.promises.rm(partial, { force: true });
    throw error;
  }
}

/**
 * Renders a labelled set of small clips in which a bright square moves left, right, up or down over a
 * grey background, then returns it as a dataset laid out like VideoFolderDataset
 * (`dir/<class>/<class>_NNN.mp4`, plus `dir/synthetic.json` describing every clip). Each clip has
 * `frames` frames at `fps`, so decoding with no sampling, or with `fps` equal to it, returns every frame.
 */
export async function makeSyntheticDataset(dir: string, options: SyntheticOptions = {}): Promise<SyntheticDataset> {
  const root = path.resolve(checkString('dir', dir));
  const settings = parseOptions(options);
  throwIfAborted(settings.signal, 'Rendering the synthetic dataset');
  const { ffmpeg } = locateFfmpeg();
  const classes = [...settings.classes].sort(compareNames);
  const digits = Math.max(3, String(settings.perClass - 1).length);
  const clips: SyntheticClip[] = [];
  const entries: FileEntry[] = [];
  for (const [label, motion] of classes.entries()) {
    await fs.promises.mkdir(path.join(root, motion), { recursive: true });
    for (let index = 0; index < settings.perClass; index += 1) {
      const id = `${motion}/${motion}_${String(index).padStart(digits, '0')}.mp4`;
      clips.push({ id, label, ...drawClip(settings, motion, index) });
      entries.push({ id, label, file: path.join(root, ...id.split('/')) });
    }
  }

  // The first failure stops the other renders instead of letting them run on.
  const stopper = new AbortController();
  const unsubscribe = onAbort(settings.signal, () => stopper.abort(settings.signal?.reason));
  const slots = new Semaphore(settings.concurrency);
  let firstError: unknown = null;
  try {
    await Promise.all(clips.map(async (clip, index) => {
      let release: (() => void) | null = null;
      try {
        release = await slots.acquire(stopper.signal, `Rendering "${entries[index].file}"`);
        await renderClip(ffmpeg, renderGraph(clip, settings.size, settings.fps), clip.frames, entries[index].file,
          stopper.signal);
      } catch (error) {
        firstError ??= error;
        stopper.abort();
      } finally {
        release?.();
      }
    }));
  } finally {
    unsubscribe();
  }
  if (firstError !== null) {
    if (settings.signal?.aborted) throw new VideoRNNError('E_ABORTED', 'Rendering the synthetic dataset was aborted');
    throw firstError;
  }

  const description = {
    format: 'video-rnn-synthetic',
    version: 1,
    options: { classes, perClass: settings.perClass, minFrames: settings.minFrames, maxFrames: settings.maxFrames,
      size: settings.size, fps: settings.fps, seed: settings.seed },
    clips,
  };
  await fs.promises.writeFile(path.join(root, 'synthetic.json'), JSON.stringify(description, null, 2) + '\n');
  return new SyntheticDataset(root, classes, entries, clips, settings.fps);
}
