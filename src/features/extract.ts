// model.extract: fills the feature store for every sample of a dataset. Each entry is claimed before
// it is computed, so concurrent extractors (processes, ranks, machines sharing the folder) compute it
// once; entries another live writer holds are left for the end and waited for; a clip that fails to
// decode is reported and the rest goes on. A killed run leaves only whole entries: a rerun skips them.
import type { Clip } from '../clip';
import type { Dataset } from '../data';
import { DistributedOptions, ResolvedDistributed, shardIndices } from '../distributed';
import { VideoRNNError, checkInteger, invalidArgument, throwIfAborted } from '../errors';
import { DecodeSpec, chunk, groupBySize, nativeClip, pipelined, toClip } from '../inputs';
import { NativeModel, callNative } from '../native';
import type { ProgressEvent } from '../training';
import type { EntryOrigin, FeatureStoreOption } from './types';
import { FeatureContext, checkFeatureStoreOption, entryKey } from './use';

export interface ExtractOptions {
  /** The store to fill (default: the model's). */
  featureStore?: FeatureStoreOption;
  /** Clips per CNN batch (default 8). */
  batchSize?: number;
  signal?: AbortSignal;
  /** Per batch, with phase 'extract', clips/s (samplesPerSecond) and the seconds left (eta). */
  onProgress?: (event: ProgressEvent) => void;
  /** Each rank of the group extracts its own shard (as train's `distributed`). */
  distributed?: DistributedOptions | boolean;
}

export interface ExtractReport {
  /** Samples handled (over every rank of a group). */
  clips: number;
  /** Entries computed and written by this run. */
  computed: number;
  /** Entries already in the store, or written meanwhile by another writer. */
  present: number;
  /** Entries computed but not kept: the store's size bound refused them (its warning says so). */
  refused: number;
  /** Samples whose video could not be read or decoded (this rank's), with the error's code. */
  failed: { id: string; code: string; message: string }[];
  seconds: number;
  clipsPerSecond: number;
}

interface ExtractSettings {
  batchSize: number;
  signal?: AbortSignal;
  onProgress?: (event: ProgressEvent) => void;
  spec: DecodeSpec;
  /** Elementwise sums over a group's ranks (the values themselves alone). */
  sumOverRanks: (values: number[]) => Promise<number[]>;
}

/** model.extract's arguments, checked before anything is queued. */
export function checkExtract(data: Dataset, options: ExtractOptions): { featureStore?: FeatureStoreOption; batchSize: number;
  signal?: AbortSignal; onProgress?: (event: ProgressEvent) => void } {
  if (typeof options !== 'object' || options === null) throw invalidArgument('options', 'an object', options);
  if (typeof data !== 'object' || data === null || typeof data.sample !== 'function' || !Number.isInteger(data.size)) {
    throw invalidArgument('data', 'a Dataset', data);
  }
  if (options.onProgress !== undefined && typeof options.onProgress !== 'function') throw invalidArgument('onProgress', 'a function', options.onProgress);
  return { featureStore: checkFeatureStoreOption(options.featureStore), batchSize: checkInteger('batchSize', options.batchSize ?? 8, 1, 1024),
    signal: options.signal, onProgress: options.onProgress };
}

/** This process's shard of the dataset (all of it alone) into the store; the counts are the group's. */
export async function extractShard(native: NativeModel, context: FeatureContext | undefined, data: Dataset,
  group: ResolvedDistributed | undefined, options: ReturnType<typeof checkExtract>, spec: DecodeSpec): Promise<ExtractReport> {
  if (!context) throw new VideoRNNError('E_INVALID_ARGUMENT', 'extract needs a featureStore (in its options or the model\'s)');
  const started = performance.now();
  const indices = group ? shardIndices(data.size, group.rank, group.worldSize) : Array.from({ length: data.size }, (_, index) => index);
  const report = await extractDataset(native, context, data, indices, { batchSize: options.batchSize, signal: options.signal,
    onProgress: group && group.rank !== 0 ? undefined : options.onProgress, spec,
    sumOverRanks: async (values) => (group ? callNative(() => native.sumOverRanks(values)) : values) });
  const seconds = (performance.now() - started) / 1000;
  return { ...report, seconds, clipsPerSecond: report.clips / Math.max(seconds, 1e-9) };
}

interface Work {
  id: string;
  key: string;
  origin: EntryOrigin;
  clip: Clip;
  release: () => Promise<void>;
}

function failure(id: string, error: unknown): ExtractReport['failed'][number] {
  const code = error instanceof VideoRNNError ? error.code : ((error as { code?: unknown })?.code as string | undefined) ?? 'E_VIDEO_DECODE';
  return { id, code: String(code), message: (error as Error)?.message ?? String(error) };
}

async function extractDataset(native: NativeModel, context: FeatureContext, data: Dataset, indices: readonly number[],
  settings: ExtractSettings): Promise<Omit<ExtractReport, 'seconds' | 'clipsPerSecond'>> {
  const { store } = context;
  const { signal, spec } = settings;
  const failed: ExtractReport['failed'] = [];
  const deferred: { id: string; key: string; origin: EntryOrigin; source: string | Clip }[] = [];
  // Claims not yet released; an abort or error releases them, so no live claim of ours is left behind.
  const held = new Set<() => Promise<void>>();
  let computed = 0;
  let present = 0;
  let refused = 0;

  // Keys, presence and claims for a batch, then the claimed clips decoded.
  const prepare = async (batch: number[]): Promise<Work[]> => {
    const work: (Work | undefined)[] = await Promise.all(batch.map(async (index) => {
      const sample = data.sample(index);
      const name = `sample ${sample.id}`;
      let entry: { key: string; origin: EntryOrigin };
      try {
        entry = await entryKey(context, sample.source, name);
      } catch (error) {
        if (signal?.aborted) throw error;
        failed.push(failure(sample.id, error));
        return undefined;
      }
      if (await store.has(entry.key)) {
        present += 1;
        return undefined;
      }
      const release = await store.claim(entry.key);
      if (!release) {
        deferred.push({ id: sample.id, ...entry, source: sample.source });
        return undefined;
      }
      held.add(release);
      const done = async (): Promise<void> => { held.delete(release); await release(); };
      // Written by another writer between the look and the claim.
      if (await store.has(entry.key)) {
        present += 1;
        await done();
        return undefined;
      }
      try {
        return { id: sample.id, ...entry, clip: await toClip(sample.source, spec, name), release: done };
      } catch (error) {
        await done();
        if (signal?.aborted) throw error;
        failed.push(failure(sample.id, error));
        return undefined;
      }
    }));
    return work.filter((item): item is Work => item !== undefined);
  };

  // The claimed clips through the CNN, by frame size, each entry written then released.
  const compute = async (work: Work[]): Promise<void> => {
    for (const group of groupBySize(work)) {
      try {
        const rows = await callNative(() => native.embed(group.map((item) => nativeClip(item.clip))));
        for (const [index, item] of group.entries()) {
          if (await store.put(item.key, rows[index], item.clip.frames, item.origin)) {
            computed += 1;
            context.counters.writes += 1;
          } else if (await store.has(item.key)) {
            present += 1;
          } else {
            refused += 1;
          }
        }
      } finally {
        for (const item of group) await item.release();
      }
    }
  };

  const batches = chunk(indices, settings.batchSize);
  const started = performance.now();
  let done = 0;
  const progress = (batch: number, batchCount: number): void => {
    const rate = done / Math.max((performance.now() - started) / 1000, 1e-9);
    settings.onProgress?.({ phase: 'extract', epoch: 0, epochs: 0, batch, batches: batchCount, loss: 0, accuracy: 0,
      samplesPerSecond: rate, eta: rate > 0 ? (indices.length - done) / rate : 0 });
  };
  try {
    await pipelined(batches, (batch) => prepare(batch), async (work, index) => {
      throwIfAborted(signal, 'extraction');
      await compute(work);
      done += batches[index].length;
      progress(index + 1, batches.length);
    });
    // Entries another writer held: wait for them; a writer that died leaves a stale claim, taken over here.
    while (deferred.length > 0) {
      throwIfAborted(signal, 'extraction');
      const item = deferred.shift()!;
      if (await store.waitFor(item.key, { signal, timeoutMs: 60_000 })) {
        present += 1;
      } else {
        const release = await store.claim(item.key);
        if (!release) {
          deferred.push(item);
          continue;
        }
        held.add(release);
        const finish = async (): Promise<void> => { held.delete(release); await release(); };
        try {
          const clip = await toClip(item.source, spec, `sample ${item.id}`);
          await compute([{ id: item.id, key: item.key, origin: item.origin, clip, release: finish }]);
        } catch (error) {
          await finish();
          if (signal?.aborted) throw error;
          failed.push(failure(item.id, error));
        }
      }
    }
  } finally {
    await Promise.all([...held].map((release) => release().catch(() => undefined)));
  }
  const [clips, computedAll, presentAll, refusedAll] = await settings.sumOverRanks([indices.length, computed, present, refused]);
  return { clips, computed: computedAll, present: presentAll, refused: refusedAll, failed };
}
