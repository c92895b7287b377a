import path from 'node:path';
import type { Clip } from '../clip';
import { VideoRNNError, checkInteger } from '../errors';

/** A file path or already-decoded frames. */
export type VideoSource = string | Clip;

/** `label` indexes `classes`; `id` is stable across runs (e.g. the path relative to the dataset root). */
export interface Sample {
  id: string;
  label: number;
  source: VideoSource;
}

export interface Dataset {
  readonly classes: string[];
  readonly size: number;
  sample(index: number): Sample;
}

export interface FileEntry {
  id: string;
  label: number;
  /** Absolute path. */
  file: string;
}

/** A dataset of video files on disk; the folder, manifest and synthetic datasets all are one. */
export class FileDataset implements Dataset {
  readonly classes: string[];
  readonly root: string;
  private readonly entries: readonly FileEntry[];

  constructor(root: string, classes: readonly string[], entries: readonly FileEntry[]) {
    entries.forEach((entry, index) => checkLabel(entry.label, classes.length, `entries[${index}] (${entry.id})`));
    this.root = root;
    this.classes = Object.freeze([...classes]) as string[];
    this.entries = Object.freeze(entries.map((entry) => Object.freeze({ ...entry })));
  }

  get size(): number {
    return this.entries.length;
  }

  sample(index: number): Sample {
    const entry = this.entries[checkInteger('index', index, 0, this.entries.length - 1)];
    return { id: entry.id, label: entry.label, source: entry.file };
  }

  /** How many samples each class has, in class order. */
  classCounts(): number[] {
    const counts = new Array<number>(this.classes.length).fill(0);
    for (const entry of this.entries) counts[entry.label] += 1;
    return counts;
  }
}

/** A label is a whole class index: 1.5 is refused, never truncated to 1. */
export function checkLabel(label: unknown, classes: number, what: string): number {
  if (typeof label !== 'number' || !Number.isInteger(label) || label < 0 || label >= classes) {
    throw new VideoRNNError('E_INVALID_ARGUMENT',
      `${what} has label ${typeof label === 'number' ? label : JSON.stringify(label)}; a label is a whole class index from 0 to ${classes - 1}`);
  }
  return label;
}

/** Ids use forward slashes on every platform so that caches keyed by id move between machines. */
export function sampleId(root: string, file: string): string {
  return path.relative(root, file).split(path.sep).join('/');
}

/** Codepoint order, as Python's sorted() and torchvision's find_classes use; locale-independent. */
export function compareNames(left: string, right: string): number {
  return left < right ? -1 : left > right ? 1 : 0;
}

export interface Problem {
  line?: number;
  message: string;
}

const shownProblems = 20;

/** One error listing every problem found, so a user fixes a file in one go rather than one line per run. */
export function problemsError(source: string, problems: readonly Problem[], allMissing: boolean): VideoRNNError {
  const listed = problems.slice(0, shownProblems)
    .map((problem) => `  ${problem.line !== undefined ? `line ${problem.line}: ` : ''}${problem.message}`);
  if (problems.length > shownProblems) listed.push(`  ... and ${problems.length - shownProblems} more`);
  const count = problems.length === 1 ? '1 problem' : `${problems.length} problems`;
  return new VideoRNNError(allMissing ? 'E_VIDEO_NOT_FOUND' : 'E_INVALID_ARGUMENT',
    `${source}: ${count}:\n${listed.join('\n')}`);
}
