import fs from 'node:fs';
import path from 'node:path';
import { VideoRNNError, checkString, invalidArgument } from '../errors';
import { FileDataset, type FileEntry, compareNames, problemsError, sampleId } from './dataset';

/** Containers ffmpeg reads that hold video; anything else in a class folder (notes, thumbnails) is skipped. */
export const videoExtensions: readonly string[] = Object.freeze([
  '.mp4', '.m4v', '.mov', '.avi', '.mkv', '.webm', '.mpg', '.mpeg', '.ogv', '.flv', '.wmv', '.3gp', '.ts', '.mts',
]);

export interface VideoFolderOptions {
  /** File extensions to keep, with or without the dot; case-insensitive. */
  extensions?: string[];
  /** Keep class folders that hold no video (they still get a class index). Default false: reported. */
  allowEmptyClasses?: boolean;
}

export async function checkDirectory(directory: string, name: string): Promise<string> {
  const absolute = path.resolve(directory);
  let stats: fs.Stats;
  try {
    stats = await fs.promises.stat(absolute);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') {
      throw new VideoRNNError('E_DATASET_NOT_FOUND', `Dataset folder not found: ${directory}`, { cause: error });
    }
    throw new VideoRNNError('E_IO', `Cannot read the dataset folder ${directory} (${code ?? 'error'})`, { cause: error });
  }
  if (!stats.isDirectory()) throw invalidArgument(name, 'a directory', directory);
  return absolute;
}

function parseExtensions(value: unknown): Set<string> {
  if (value === undefined) return new Set(videoExtensions);
  if (!Array.isArray(value) || value.length === 0) throw invalidArgument('extensions', 'non-empty array of strings', value);
  return new Set(value.map((extension, index) => {
    const text = checkString(`extensions[${index}]`, extension).toLowerCase();
    return text.startsWith('.') ? text : `.${text}`;
  }));
}

/** Files under `directory`, recursively and sorted, skipping hidden entries; follows symbolic links. */
async function listFiles(directory: string, extensions: Set<string>, found: string[]): Promise<void> {
  const names = (await fs.promises.readdir(directory)).filter((name) => !name.startsWith('.')).sort(compareNames);
  for (const name of names) {
    const full = path.join(directory, name);
    let stats: fs.Stats;
    try {
      stats = await fs.promises.stat(full);
    } catch {
      continue; // a dangling link is not a video
    }
    if (stats.isDirectory()) await listFiles(full, extensions, found);
    else if (stats.isFile() && extensions.has(path.extname(name).toLowerCase())) found.push(full);
  }
}

/**
 * `root/<class>/<video>`, the layout of torchvision's DatasetFolder: classes are the sub-folders in
 * codepoint order, and videos may sit in nested folders inside their class folder.
 */
export class VideoFolderDataset extends FileDataset {
  static async open(root: string, options: VideoFolderOptions = {}): Promise<VideoFolderDataset> {
    checkString('root', root);
    if (typeof options !== 'object' || options === null) throw invalidArgument('options', 'an object', options);
    const extensions = parseExtensions(options.extensions);
    const allowEmpty = options.allowEmptyClasses ?? false;
    if (typeof allowEmpty !== 'boolean') throw invalidArgument('allowEmptyClasses', 'a boolean', allowEmpty);
    const absolute = await checkDirectory(root, 'root');

    const classes: string[] = [];
    for (const name of (await fs.promises.readdir(absolute)).filter((entry) => !entry.startsWith('.')).sort(compareNames)) {
      const stats = await fs.promises.stat(path.join(absolute, name)).catch(() => null);
      if (stats?.isDirectory()) classes.push(name);
    }
    if (classes.length === 0) {
      throw new VideoRNNError('E_INVALID_ARGUMENT', `${root}: no class folders; expected ${root}/<class>/<video>`);
    }

    const entries: FileEntry[] = [];
    const empty: string[] = [];
    for (const [label, className] of classes.entries()) {
      const files: string[] = [];
      await listFiles(path.join(absolute, className), extensions, files);
      if (files.length === 0) empty.push(className);
      for (const file of files) entries.push({ id: sampleId(absolute, file), label, file });
    }
    if (empty.length > 0 && !allowEmpty) {
      throw problemsError(root, empty.map((className) => ({
        message: `class folder "${className}" holds no video (extensions: ${[...extensions].join(' ')})`,
      })), false);
    }
    return new VideoFolderDataset(absolute, classes, entries);
  }
}
