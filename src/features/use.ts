// How a model reads and writes the feature store: which entries belong to it (the key), the level
// behind the memory cache for each batch, and extraction (filling the store for a whole dataset).
// The memory cache stays the first level; only the current and the prefetched batch's rows are held.
import { createHash } from 'node:crypto';
import path from 'node:path';
import { BACKBONE_PREFIX } from '../checkpoint';
import type { Clip, HostTensor } from '../clip';
import { invalidArgument } from '../errors';
import { DecodeSpec, VideoInput, checkClip, chunk, groupBySize, nativeClip, pipelined, toClip } from '../inputs';
import { NativeClip, NativeModel, callNative } from '../native';
import type { ModelConfig, Sampling } from '../options';
import { backboneIdentity } from '../weights/identity';
import { FeatureStore, featureKey, videoDigest } from './store';
import type { EntryOrigin, FeatureStoreOption } from './types';

const EMBEDDING_SIZE = 4096;

/** Checks a featureStore option's shape; undefined stays undefined. */
export function checkFeatureStoreOption(value: unknown, name = 'featureStore'): FeatureStoreOption | undefined {
  if (value === undefined) return undefined;
  if (typeof value === 'string') {
    if (value.length === 0) throw invalidArgument(name, 'a folder path or { path, maxBytes?, dtype? }', value);
    return value;
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw invalidArgument(name, 'a folder path or { path, maxBytes?, dtype? }', value);
  }
  const settings = value as Record<string, unknown>;
  if (typeof settings.path !== 'string' || settings.path.length === 0) throw invalidArgument(`${name}.path`, 'a folder path', settings.path);
  const { maxBytes, dtype } = settings;
  if (maxBytes !== undefined && (typeof maxBytes !== 'number' || !Number.isSafeInteger(maxBytes) || maxBytes < 1)) {
    throw invalidArgument(`${name}.maxBytes`, 'a positive integer', maxBytes);
  }
  if (dtype !== undefined && dtype !== 'float32' && dtype !== 'bf16' && dtype !== 'fp16') {
    throw invalidArgument(`${name}.dtype`, "'float32', 'bf16' or 'fp16'", dtype);
  }
  return value as FeatureStoreOption;
}

/** What a call needs to use the store: the store itself and the parts of every key it makes. */
export interface FeatureContext {
  store: FeatureStore;
  backbone: string;
  precision: string;
  frameSize: number;
  sampling: Sampling;
  counters: { hits: number; misses: number; writes: number };
}

/** What the model knows of its backbone (model.backbone). */
export interface BackboneSummary {
  identity: string | null;
  trainedTensors: string[];
}

/**
 * One model's use of feature stores: each store opened once per folder and settings, the backbone's
 * store identity memoized by the native weights' fingerprint, and the counters of model.stats.
 */
export class ModelFeatures {
  readonly counters = { hits: 0, misses: 0, writes: 0 };
  private readonly stores = new Map<string, Promise<FeatureStore>>();
  private memo: { fingerprint: string; identity: string } | undefined;

  constructor(readonly fallback: FeatureStoreOption | undefined) {}

  open(option: FeatureStoreOption): Promise<FeatureStore> {
    const settings = typeof option === 'string' ? { path: option } : option;
    const id = JSON.stringify([path.resolve(settings.path), settings.maxBytes ?? null, settings.dtype ?? null]);
    let opened = this.stores.get(id);
    if (!opened) {
      opened = FeatureStore.open(option);
      this.stores.set(id, opened);
      opened.catch(() => this.stores.delete(id));
    }
    return opened;
  }

  /**
   * The backbone's store identity: the identity of the weights file it was built from while no layer of
   * it has been trained, else the same hash computed over its current weights.
   */
  async backbone(native: NativeModel, info: BackboneSummary): Promise<string> {
    if (info.identity !== null && info.trainedTensors.length === 0) return info.identity;
    const fingerprint = await callNative(() => native.fingerprint());
    if (this.memo?.fingerprint === fingerprint) return this.memo.identity;
    const others = native.shapes().map((entry) => entry.name).filter((name) => !name.startsWith(BACKBONE_PREFIX));
    const tensors = await callNative(() => native.getState(others));
    const map = new Map<string, HostTensor>(tensors.map((tensor) => [tensor.name.slice(BACKBONE_PREFIX.length), tensor]));
    const identity = backboneIdentity(map);
    this.memo = { fingerprint, identity };
    return identity;
  }

  /** The context of one call, or undefined when it uses no store. */
  async context(native: NativeModel, info: BackboneSummary, config: ModelConfig, precision: string,
    option: FeatureStoreOption | undefined, frozen = true): Promise<FeatureContext | undefined> {
    const chosen = checkFeatureStoreOption(option) ?? this.fallback;
    if (chosen === undefined) return undefined;
    if (!frozen) {
      warnStoreIgnored();
      return undefined;
    }
    const store = await this.open(chosen);
    const backbone = await this.backbone(native, info);
    return { store, backbone, precision, frameSize: config.frameSize, sampling: config.sampling, counters: this.counters };
  }
}

let warnedUnfrozen = false;
let warnedWrite = false;

function warnWriteFailed(error: unknown): void {
  if (warnedWrite) return;
  warnedWrite = true;
  process.emitWarning(`VideoRNN: a feature store entry could not be written (${(error as Error)?.message ?? error}); ` +
    'its rows are used but will be computed again next time.', { code: 'VIDEO_RNN_FEATURE_STORE_WRITE' });
}

/** A fine-tune that trains backbone layers cannot use stored rows: said once per process. */
function warnStoreIgnored(): void {
  if (warnedUnfrozen) return;
  warnedUnfrozen = true;
  process.emitWarning('VideoRNN: the feature store is not used while backbone layers train (trainableBackboneLayers > 0); ' +
    'every clip goes through the CNN.', { code: 'VIDEO_RNN_FEATURE_STORE_IGNORED' });
}

/** The store key of a source and what its entry records. */
export async function entryKey(context: FeatureContext, source: VideoInput, name: string):
  Promise<{ key: string; origin: EntryOrigin }> {
  let video: string;
  let described: EntryOrigin['source'];
  if (typeof source === 'string') {
    // Hashed once per process and file version (videoDigest remembers); a missing file is E_VIDEO_NOT_FOUND.
    const { path: file, size, mtimeMs, sha256 } = await videoDigest(source);
    described = { path: file, size, mtimeMs, sha256 };
    video = `sha256:${described.sha256}`;
  } else {
    const clip = checkClip(source as Clip, name);
    video = `clip:${clip.frames}x${clip.height}x${clip.width}:sha256:${createHash('sha256').update(clip.data).digest('hex')}`;
  }
  const { backbone, precision, frameSize, sampling } = context;
  const key = featureKey({ video, frameSize, sampling, backbone, precision });
  return { key, origin: { source: described, backbone, frameSize, sampling: { ...sampling }, precision } };
}

/** Stored rows as a clip of the batch; with a memory key, they also enter the memory cache. */
function rowsClip(rows: Float32Array, frames: number, cacheKey: string | undefined): NativeClip {
  return { embeddings: rows, frames, cacheKey, store: cacheKey !== undefined };
}

/** A stored entry when it is usable: rows of this model's CNN width. */
async function stored(context: FeatureContext, key: string): Promise<{ data: Float32Array; frames: number } | undefined> {
  const entry = await context.store.get(key);
  const usable = entry !== undefined && entry.dim === EMBEDDING_SIZE && entry.frames > 0 && entry.data.length === entry.frames * EMBEDDING_SIZE;
  if (usable) context.counters.hits += 1;
  else context.counters.misses += 1;
  return usable ? entry : undefined;
}

export interface StoreSource {
  source: VideoInput;
  name: string;
  /** The memory cache's key, where the memory cache is in use. */
  cacheKey?: string;
}

/**
 * The batch's clips as the native step takes them: a memory-cache key alone when the rows are
 * cached, the store's rows, or (a miss) decoded, run through the CNN once here, stored, and handed
 * over as rows. The result is in the sources' order.
 */
export async function storedBatch(native: NativeModel, context: FeatureContext, sources: readonly StoreSource[],
  spec: DecodeSpec): Promise<NativeClip[]> {
  const out: NativeClip[] = new Array(sources.length);
  const missed: { position: number; clip: Clip; key: string; origin: EntryOrigin }[] = [];
  await Promise.all(sources.map(async (item, position) => {
    if (item.cacheKey !== undefined && native.isCached(item.cacheKey)) {
      out[position] = { cacheKey: item.cacheKey };
      return;
    }
    const { key, origin } = await entryKey(context, item.source, item.name);
    const hit = await stored(context, key);
    if (hit) {
      out[position] = rowsClip(hit.data, hit.frames, item.cacheKey);
      return;
    }
    missed.push({ position, clip: await toClip(item.source, spec, item.name), key, origin });
  }));
  // In the batch's order, whichever decode finished first.
  missed.sort((a, b) => a.position - b.position);
  for (const group of groupBySize(missed)) {
    const rows = await callNative(() => native.embed(group.map((item) => nativeClip(item.clip))));
    await Promise.all(group.map(async (item, index) => {
      out[item.position] = rowsClip(rows[index], item.clip.frames, sources[item.position].cacheKey);
      try {
        if (await context.store.put(item.key, rows[index], item.clip.frames, item.origin)) context.counters.writes += 1;
      } catch (error) {
        // The store is a cache: a write that fails (a full disk, a read-only folder) costs a later recompute, not this call.
        warnWriteFailed(error);
      }
    }));
  }
  return out;
}

/** Probability rows of predict, in input order, each batch's rows from the store or computed once and stored. */
export async function storedProbabilities(native: NativeModel, context: FeatureContext, inputs: readonly VideoInput[], batchSize: number,
  spec: DecodeSpec): Promise<Float32Array[]> {
  const rows = await pipelined(chunk(named(inputs), batchSize), (batch) => storedBatch(native, context, batch, spec), async (clips) => {
    const result = await callNative(() => native.predict(clips));
    return clips.map((_, row) => result.probabilities.slice(row * result.classes, (row + 1) * result.classes));
  });
  return rows.flat();
}

/** fc7 rows of embed, in input order: stored ones read, the others computed and stored. */
export async function storedEmbeddings(native: NativeModel, context: FeatureContext, inputs: readonly VideoInput[],
  spec: DecodeSpec): Promise<Float32Array[]> {
  const rows = await pipelined(chunk(named(inputs), 8), (batch) => storedBatch(native, context, batch, spec),
    async (clips) => clips.map((clip) => clip.embeddings!));
  return rows.flat();
}

function named(inputs: readonly VideoInput[]): StoreSource[] {
  return inputs.map((source, index) => ({ source, name: `input[${index}]` }));
}
