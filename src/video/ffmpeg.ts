import fs from 'node:fs';
import path from 'node:path';
import { VideoRNNError, invalidArgument } from '../errors';

/** Where a binary came from, in the order they are tried. */
export type FfmpegSource = 'option' | 'environment' | 'package' | 'sibling' | 'path';

export interface FfmpegBinaries {
  ffmpeg: string;
  ffprobe: string;
  ffmpegSource: FfmpegSource;
  ffprobeSource: FfmpegSource;
}

export interface FfmpegPathOptions {
  /** Path to the ffmpeg executable; `null` clears a previous setting. */
  ffmpeg?: string | null;
  /** Path to the ffprobe executable; `null` clears a previous setting. */
  ffprobe?: string | null;
}

interface Found {
  file: string;
  source: FfmpegSource;
}

const executableSuffix = process.platform === 'win32' ? '.exe' : '';

const configured: { ffmpeg: string | null; ffprobe: string | null } = { ffmpeg: null, ffprobe: null };
let cache: { key: string; ffmpeg: Found | VideoRNNError; ffprobe: Found | VideoRNNError | null } | null = null;

const installHint = 'Install ffmpeg (Debian/Ubuntu: sudo apt-get install ffmpeg; macOS: brew install ffmpeg), ' +
  'or set FFMPEG_PATH and FFPROBE_PATH to the executables.';

function isExecutableFile(file: string): boolean {
  try {
    if (!fs.statSync(file).isFile()) return false;
    fs.accessSync(file, fs.constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

/**
 * Optional packages are loaded by name at run time: they are not dependencies, and a package whose
 * install script could not download its binary still loads but points at a missing file.
 */
function packageBinary(packageName: string, tried: string[]): string | null {
  let exported: unknown;
  try {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    exported = require(packageName);
  } catch {
    tried.push(`${packageName}: not installed`);
    return null;
  }
  const candidate = typeof exported === 'string' ? exported
    : typeof (exported as { path?: unknown } | null)?.path === 'string' ? (exported as { path: string }).path
    : null;
  if (candidate === null) {
    tried.push(`${packageName}: no binary for this platform`);
    return null;
  }
  if (!isExecutableFile(candidate)) {
    tried.push(`${packageName}: ${candidate} is missing or not executable (its install script may not have run)`);
    return null;
  }
  return candidate;
}

function searchPath(name: string, tried: string[]): string | null {
  const directories = (process.env.PATH ?? '').split(path.delimiter).filter((entry) => entry.length > 0);
  for (const directory of directories) {
    const candidate = path.join(directory, name + executableSuffix);
    if (isExecutableFile(candidate)) return candidate;
  }
  tried.push(`PATH: no ${name} in ${directories.length > 0 ? directories.join(path.delimiter) : '(empty PATH)'}`);
  return null;
}

/**
 * An explicit choice (option or environment variable) that does not work is an error rather than a
 * silent fall-through: the user asked for that binary, and using another one would hide the mistake.
 */
function explicitBinary(name: string, optionValue: string | null, variable: string): Found | VideoRNNError | null {
  if (optionValue !== null) {
    if (isExecutableFile(optionValue)) return { file: path.resolve(optionValue), source: 'option' };
    return new VideoRNNError('E_NO_FFMPEG',
      `The ${name} path set with setFfmpegPath (${optionValue}) is not an executable file. ${installHint}`);
  }
  const fromEnvironment = process.env[variable];
  if (fromEnvironment !== undefined && fromEnvironment !== '') {
    if (isExecutableFile(fromEnvironment)) return { file: path.resolve(fromEnvironment), source: 'environment' };
    return new VideoRNNError('E_NO_FFMPEG',
      `${variable}=${fromEnvironment} is not an executable file; fix or unset it. ${installHint}`);
  }
  return null;
}

function findFfmpeg(): Found | VideoRNNError {
  const explicit = explicitBinary('ffmpeg', configured.ffmpeg, 'FFMPEG_PATH');
  if (explicit !== null) return explicit;
  const tried = ['FFMPEG_PATH: not set'];
  for (const packageName of ['ffmpeg-static', '@ffmpeg-installer/ffmpeg']) {
    const file = packageBinary(packageName, tried);
    if (file !== null) return { file, source: 'package' };
  }
  const onPath = searchPath('ffmpeg', tried);
  if (onPath !== null) return { file: onPath, source: 'path' };
  return new VideoRNNError('E_NO_FFMPEG', `ffmpeg was not found. ${installHint} Tried: ${tried.join('; ')}.`);
}

function findFfprobe(ffmpeg: Found | VideoRNNError): Found | VideoRNNError {
  const explicit = explicitBinary('ffprobe', configured.ffprobe, 'FFPROBE_PATH');
  if (explicit !== null) return explicit;
  const tried = ['FFPROBE_PATH: not set'];
  // A build ships ffprobe next to its ffmpeg; preferring that pair keeps both at the same version.
  if (!(ffmpeg instanceof VideoRNNError)) {
    const sibling = path.join(path.dirname(ffmpeg.file), 'ffprobe' + executableSuffix);
    if (isExecutableFile(sibling)) return { file: sibling, source: 'sibling' };
    tried.push(`next to ffmpeg: no ${sibling}`);
  }
  for (const packageName of ['ffprobe-static', '@ffprobe-installer/ffprobe']) {
    const file = packageBinary(packageName, tried);
    if (file !== null) return { file, source: 'package' };
  }
  const onPath = searchPath('ffprobe', tried);
  if (onPath !== null) return { file: onPath, source: 'path' };
  return new VideoRNNError('E_NO_FFMPEG', `ffprobe was not found. ${installHint} Tried: ${tried.join('; ')}.`);
}

/** Lookups are cached until a setting they depend on changes, so a decode does not walk PATH. */
function resolveAll(): { ffmpeg: Found | VideoRNNError; ffprobe: Found | VideoRNNError } {
  const key = JSON.stringify([configured.ffmpeg, configured.ffprobe, process.env.FFMPEG_PATH,
    process.env.FFPROBE_PATH, process.env.PATH]);
  if (cache === null || cache.key !== key) {
    cache = { key, ffmpeg: findFfmpeg(), ffprobe: null };
  }
  if (cache.ffprobe === null) cache.ffprobe = findFfprobe(cache.ffmpeg);
  return { ffmpeg: cache.ffmpeg, ffprobe: cache.ffprobe };
}

function checkOptionalPath(name: string, value: unknown): string | null | undefined {
  if (value === undefined || value === null) return value;
  if (typeof value !== 'string' || value.length === 0) throw invalidArgument(name, 'non-empty string or null', value);
  return value;
}

/**
 * Chooses the binaries for this process (highest priority, above FFMPEG_PATH/FFPROBE_PATH).
 * A path that is not executable is reported (E_NO_FFMPEG) here, not at the first decode.
 */
export function setFfmpegPath(options: FfmpegPathOptions): void {
  if (typeof options !== 'object' || options === null) throw invalidArgument('options', 'an object', options);
  const ffmpeg = checkOptionalPath('ffmpeg', options.ffmpeg);
  const ffprobe = checkOptionalPath('ffprobe', options.ffprobe);
  const previous = { ...configured };
  if (ffmpeg !== undefined) configured.ffmpeg = ffmpeg;
  if (ffprobe !== undefined) configured.ffprobe = ffprobe;
  cache = null;
  for (const [name, value] of [['ffmpeg', ffmpeg], ['ffprobe', ffprobe]] as const) {
    if (typeof value === 'string' && !isExecutableFile(value)) {
      Object.assign(configured, previous);
      throw new VideoRNNError('E_NO_FFMPEG', `The ${name} path ${value} is not an executable file. ${installHint}`);
    }
  }
}

/** The binaries decoding will use; throws E_NO_FFMPEG with a fix when either is missing. */
export function locateFfmpeg(): FfmpegBinaries {
  const { ffmpeg, ffprobe } = resolveAll();
  if (ffmpeg instanceof VideoRNNError) throw ffmpeg;
  if (ffprobe instanceof VideoRNNError) throw ffprobe;
  return { ffmpeg: ffmpeg.file, ffprobe: ffprobe.file, ffmpegSource: ffmpeg.source, ffprobeSource: ffprobe.source };
}

/** The ffmpeg executable in use, or null when none is found (for backendInfo()). Never throws. */
export function ffmpegPath(): string | null {
  const { ffmpeg } = resolveAll();
  return ffmpeg instanceof VideoRNNError ? null : ffmpeg.file;
}

/** The ffprobe executable in use, or null when none is found. Never throws. */
export function ffprobePath(): string | null {
  const { ffprobe } = resolveAll();
  return ffprobe instanceof VideoRNNError ? null : ffprobe.file;
}
