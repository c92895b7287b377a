// Finding and checking the backbone a small checkpoint references (its identity, naming and a file
// name hint), so that a checkpoint never loads onto other weights than the ones it was trained on.
import { stat } from 'node:fs/promises';
import { basename, delimiter, dirname, join, resolve } from 'node:path';
import type { TensorMap } from '../clip';
import { VideoRNNError } from '../errors';
import { readBackbone } from './backbone';
import { BackboneReference, backboneIdentity } from './identity';

/** The search path's environment variable: folders separated by ':' (';' on Windows), as PATH. */
export const BACKBONE_PATH_VARIABLE = 'VIDEO_RNN_BACKBONE_PATH';

export interface LoadedBackbone {
  tensors: TensorMap;
  reference: BackboneReference;
  /** The file, resolved. */
  path: string;
}

// Hashing 528 MB takes about a second: remember each file's identity while it stays the same file.
const identities = new Map<string, string>();

async function fileKey(path: string): Promise<string | undefined> {
  try {
    const info = await stat(path, { bigint: true });
    return `${info.dev}:${info.ino}:${info.size}:${info.mtimeNs}:${info.ctimeNs}`;
  } catch {
    return undefined;
  }
}

/** Reads VGG16 weights (any supported file form) and computes their identity. */
export async function loadBackbone(path: string): Promise<LoadedBackbone> {
  const key = await fileKey(path);
  const { tensors, naming } = await readBackbone(path);
  let identity = key === undefined ? undefined : identities.get(key);
  if (identity === undefined) {
    identity = backboneIdentity(tensors);
    if (key !== undefined && key === await fileKey(path)) identities.set(key, identity);
  }
  return { tensors, reference: { identity, naming, hint: basename(path) }, path: resolve(path) };
}

/** Folders of the search path: the option's, then the environment variable's. */
export function backboneSearchPath(option: string | readonly string[] | undefined, env: NodeJS.ProcessEnv = process.env): string[] {
  const given = option === undefined ? [] : typeof option === 'string' ? option.split(delimiter) : [...option];
  const fromEnv = (env[BACKBONE_PATH_VARIABLE] ?? '').split(delimiter);
  return [...given, ...fromEnv].filter((folder) => typeof folder === 'string' && folder.length > 0);
}

function describe(reference: BackboneReference): string {
  return `backbone ${reference.identity} (${reference.naming}-named VGG16 weights, loaded from a file named ${reference.hint})`;
}

function mismatch(checkpoint: string, reference: BackboneReference, found: LoadedBackbone[]): VideoRNNError {
  const files = found.map((backbone) => `${backbone.path} is ${backbone.reference.identity}`).join('; ');
  return new VideoRNNError('E_BACKBONE_MISMATCH', `${checkpoint} was trained on ${describe(reference)}, ` +
    `but ${files}: other weights, which would make another model`);
}

/**
 * The backbone a checkpoint references: `explicit` when given (it must have the identity), else the
 * first file named `hint` whose identity matches, in the checkpoint's folder and then in each folder
 * of the search path. None: E_BACKBONE_NOT_FOUND; only files with other weights: E_BACKBONE_MISMATCH.
 */
export async function resolveBackbone(checkpoint: string, reference: BackboneReference,
  options: { backboneWeights?: string; backbonePath?: string | readonly string[] } = {}): Promise<LoadedBackbone> {
  if (options.backboneWeights !== undefined) {
    const backbone = await loadBackbone(options.backboneWeights);
    if (backbone.reference.identity !== reference.identity) throw mismatch(checkpoint, reference, [backbone]);
    return backbone;
  }
  const folders = [dirname(resolve(checkpoint)), ...backboneSearchPath(options.backbonePath).map((folder) => resolve(folder))];
  const candidates = [...new Set(folders.map((folder) => join(folder, reference.hint)))];
  const others: LoadedBackbone[] = [];
  for (const candidate of candidates) {
    const info = await stat(candidate).catch(() => undefined);
    if (!info?.isFile()) continue;
    const backbone = await loadBackbone(candidate);
    if (backbone.reference.identity === reference.identity) return backbone;
    others.push(backbone);
  }
  if (others.length > 0) throw mismatch(checkpoint, reference, others);
  throw new VideoRNNError('E_BACKBONE_NOT_FOUND', `${checkpoint} needs ${describe(reference)}; ` +
    `no file ${reference.hint} with that identity in ${folders.join(', ')}. Pass its weights file (backboneWeights, ` +
    `--backbone), put it beside the checkpoint, or add its folder to ${BACKBONE_PATH_VARIABLE}`);
}
