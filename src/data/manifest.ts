import fs from 'node:fs';
import path from 'node:path';
import { VideoRNNError, checkString, invalidArgument } from '../errors';
import { FileDataset, type FileEntry, type Problem, compareNames, problemsError, sampleId } from './dataset';
import { checkDirectory } from './folder';
import { type ManifestRecord, type ParsedManifest, parseClassIndex, parseCsv, parseLines } from './manifest-format';

export type ManifestFormat = 'auto' | 'lines' | 'csv' | 'ucf101';

export interface ManifestOptions {
  /** Folder that relative paths start from. Default: the manifest's folder. */
  root?: string;
  /** `auto` (default): `ucf101` for `trainlistNN.txt`/`testlistNN.txt` beside a classInd.txt, `csv` for `.csv`, else `lines`. */
  format?: ManifestFormat;
  /** Class names in output order; labels outside it are reported. Not used with `ucf101`. */
  classes?: string[];
  /** UCF101's classInd.txt. Default: classInd.txt beside the list. */
  classIndex?: string;
  /** Report listed files that do not exist (default true). */
  checkFiles?: boolean;
}

const formats: ManifestFormat[] = ['auto', 'lines', 'csv', 'ucf101'];
const optionNames = ['root', 'format', 'classes', 'classIndex', 'checkFiles'];

async function readText(file: string, what: string): Promise<string> {
  try {
    return await fs.promises.readFile(file, 'utf8');
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') {
      throw new VideoRNNError('E_DATASET_NOT_FOUND', `${what} not found: ${file}`, { cause: error });
    }
    throw new VideoRNNError(code === 'EISDIR' ? 'E_INVALID_ARGUMENT' : 'E_IO', `Cannot read ${what} ${file}: ${(error as Error).message}`,
      { cause: error });
  }
}

function detectFormat(file: string, options: ManifestOptions): Exclude<ManifestFormat, 'auto'> {
  const requested = options.format ?? 'auto';
  if (requested !== 'auto') return requested;
  if (options.classIndex !== undefined) return 'ucf101';
  if (path.extname(file).toLowerCase() === '.csv') return 'csv';
  const besideClassIndex = fs.existsSync(path.join(path.dirname(file), 'classInd.txt'));
  if (/^(train|test)list\d*\.txt$/i.test(path.basename(file)) && besideClassIndex) return 'ucf101';
  return 'lines';
}

const wholeNumber = /^\d+$/;
const fractionalNumber = /^(\d+\.\d*|\.\d+)$/;

/**
 * Labels are class names. When no class list is given and every label is a whole number, labels are
 * 0-based indices (the `path index` lists of mmaction2 and similar tools), and classes are named "0".."K-1".
 * A fractional number among index labels ("1.5", "2.0") is refused rather than made a class of its own.
 */
function resolveNamedLabels(parsed: ParsedManifest, classes: string[] | undefined):
  { classes: string[]; labels: (number | null)[]; problems: Problem[] } {
  const problems: Problem[] = [];
  const tokens = parsed.records.map((record) => record.label ?? '');
  const numeric = tokens.length > 0 && tokens.every((token) => wholeNumber.test(token) || fractionalNumber.test(token));
  let names: string[];
  if (classes !== undefined) {
    names = classes;
  } else if (numeric) {
    const largest = Math.max(0, ...tokens.filter((token) => wholeNumber.test(token)).map(Number));
    names = Array.from({ length: largest + 1 }, (_, index) => String(index));
  } else {
    names = [...new Set(tokens)].sort(compareNames);
  }
  const byName = new Map(names.map((name, index) => [name, index]));
  const labels = parsed.records.map((record, index) => {
    const token = tokens[index];
    const named = byName.get(token);
    if (named !== undefined) return named;
    if (wholeNumber.test(token) && Number(token) < names.length) return Number(token);
    if (fractionalNumber.test(token)) {
      problems.push({ line: record.line, message: `label "${token}" is not a whole number (labels are class names or 0-based class indices)` });
      return null;
    }
    problems.push({ line: record.line, message: `unknown label "${token}" (classes: ${names.join(', ')})` });
    return null;
  });
  return { classes: names, labels, problems };
}

/** UCF101 lists: `Class/v_Class_g08_c01.avi 37` with 1-based indices, or no index (test lists). */
function resolveUcf101Labels(parsed: ParsedManifest, classes: string[]): { labels: (number | null)[]; problems: Problem[] } {
  const problems: Problem[] = [];
  const byName = new Map(classes.map((name, index) => [name, index]));
  // The dataset's folder for HandstandPushups differs in case from its file names; match case-blind as a fallback.
  const byLowerName = new Map(classes.map((name, index) => [name.toLowerCase(), index]));
  const labels = parsed.records.map((record: ManifestRecord) => {
    if (record.label !== undefined) {
      const index = /^\d+$/.test(record.label) ? Number(record.label) : NaN;
      if (index >= 1 && index <= classes.length) return index - 1;
      problems.push({ line: record.line,
        message: `unknown label "${record.label}" (classInd.txt lists 1 to ${classes.length})` });
      return null;
    }
    const folder = record.path.split(/[\\/]/)[0];
    const found = byName.get(folder) ?? byLowerName.get(folder.toLowerCase());
    if (found !== undefined) return found;
    problems.push({ line: record.line, message: `unknown class folder "${folder}" (not in classInd.txt)` });
    return null;
  });
  return { labels, problems };
}

async function missingFiles(entries: { line: number; file: string }[]): Promise<Problem[]> {
  const problems: Problem[] = [];
  const batch = 64;
  for (let start = 0; start < entries.length; start += batch) {
    const checks = await Promise.all(entries.slice(start, start + batch).map(async (entry) => {
      const stats = await fs.promises.stat(entry.file).catch(() => null);
      if (stats === null) return { line: entry.line, message: `file not found: ${entry.file}` };
      if (!stats.isFile()) return { line: entry.line, message: `not a file: ${entry.file}` };
      return null;
    }));
    for (const problem of checks) if (problem !== null) problems.push(problem);
  }
  return problems;
}

function checkOptions(options: unknown): ManifestOptions {
  if (typeof options !== 'object' || options === null || Array.isArray(options)) {
    throw invalidArgument('options', 'an object', options);
  }
  const record = options as Record<string, unknown>;
  for (const key of Object.keys(record)) {
    if (!optionNames.includes(key)) throw invalidArgument('option name', `one of ${optionNames.join(', ')}`, key);
  }
  if (record.root !== undefined) checkString('root', record.root);
  if (record.classIndex !== undefined) checkString('classIndex', record.classIndex);
  if (record.format !== undefined && !formats.includes(record.format as ManifestFormat)) {
    throw invalidArgument('format', `one of ${formats.join(', ')}`, record.format);
  }
  if (record.checkFiles !== undefined && typeof record.checkFiles !== 'boolean') {
    throw invalidArgument('checkFiles', 'a boolean', record.checkFiles);
  }
  if (record.classes !== undefined) {
    const classes = record.classes;
    if (!Array.isArray(classes) || classes.length === 0) throw invalidArgument('classes', 'non-empty array of strings', classes);
    classes.forEach((name, index) => checkString(`classes[${index}]`, name));
    if (new Set(classes).size !== classes.length) throw invalidArgument('classes', 'an array without duplicates', classes);
  }
  return record as ManifestOptions;
}

/** A list of videos with labels: `path label` lines, CSV, or UCF101 split lists. */
export class ManifestDataset extends FileDataset {
  /** The manifest this dataset was read from (absolute). */
  readonly manifest: string;

  private constructor(manifest: string, root: string, classes: string[], entries: FileEntry[]) {
    super(root, classes, entries);
    this.manifest = manifest;
  }

  static async open(file: string, options: ManifestOptions = {}): Promise<ManifestDataset> {
    const manifest = path.resolve(checkString('file', file));
    const settings = checkOptions(options);
    const format = detectFormat(manifest, settings);
    const root = await checkDirectory(settings.root ?? path.dirname(manifest), 'root');
    const text = await readText(manifest, 'Manifest');

    let classes: string[];
    let parsed: ParsedManifest;
    let labels: (number | null)[];
    const problems: Problem[] = [];
    if (format === 'ucf101') {
      const indexFile = path.resolve(settings.classIndex ?? path.join(path.dirname(manifest), 'classInd.txt'));
      const classIndex = parseClassIndex(await readText(indexFile, 'UCF101 class index'));
      if (classIndex.problems.length > 0) throw problemsError(indexFile, classIndex.problems, false);
      classes = classIndex.classes;
      parsed = parseLines(text, false);
      const resolved = resolveUcf101Labels(parsed, classes);
      labels = resolved.labels;
      problems.push(...parsed.problems, ...resolved.problems);
    } else {
      parsed = format === 'csv' ? parseCsv(text) : parseLines(text, true);
      const resolved = resolveNamedLabels(parsed, settings.classes);
      classes = resolved.classes;
      labels = resolved.labels;
      problems.push(...parsed.problems, ...resolved.problems);
    }

    const located = parsed.records.map((record) => ({ line: record.line, file: path.resolve(root, record.path) }));
    const missing = settings.checkFiles === false ? [] : await missingFiles(located);
    const all = [...problems, ...missing].sort((left, right) => (left.line ?? 0) - (right.line ?? 0));
    if (all.length > 0) throw problemsError(manifest, all, problems.length === 0);
    if (parsed.records.length === 0) {
      throw new VideoRNNError('E_INVALID_ARGUMENT', `${manifest}: lists no videos`);
    }
    const entries = located.map((entry, index) => ({
      id: sampleId(root, entry.file), label: labels[index] as number, file: entry.file,
    }));
    return new ManifestDataset(manifest, root, classes, entries);
  }
}
