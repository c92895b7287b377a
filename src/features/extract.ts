// model.extract: fills the feature store for every sample of a dataset. Each entry is claimed before
// it is computed, so concurrent extractors (processes, ranks, machines sharing the folder) compute it
// once; entries another live writer holds are left for the end and waited for; a clip that fails to
// decode is reported and the rest goes on. A killed run leaves only whole entries: a rerun skips them.
import type { Clip } from '../clip';
import type { Dataset } from '../data';
import { VideoRNNError, throwIfAborted } from '../errors';
import { DecodeSpec, chunk, groupBySize, nativeClip, pipelined, toClip } from '../inputs';
import { NativeModel, callNative } from '../native';
import type { ProgressEvent } from '../training';
import type { EntryOrigin } from './types';
import { FeatureContext, entryKey } from './use';

export interface ExtractReport {
  /** Samples handled (over every rank of a group). */
  clips: number;
  /** Entries computed and written by this run. */
  computed: number;
  /** Entries already in the store, or written meanwhile by another writer. */
  present: number;
  /** Samples whose video could not be read or decoded (this rank's), with the error's code. */
  failed: { id: string; code: string; message: string }[];
  seconds: number;
  clipsPerSecond: number;
}

export interface ExtractSettings {
  batchSize: number;
  signal?: AbortSignal;
  onProgress?: (event: ProgressEvent) => void;
  spec: DecodeSpec;
  /** Elementwise sums over a group's ranks (the values themselves alone). */
  sumOverRanks: (values: number[]) => Promise<number[]>;
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

export async function extractDataset(native: NativeModel, context: FeatureContext, data: Dataset, indices: readonly number[],
  settings: ExtractSettings): Promise<Omit<ExtractReport, 'seconds' | 'clipsPerSecond'>> {
  const { store } = context;
  const { signal, spec } = settings;
  const failed: ExtractReport['failed'] = [];
  const deferred: { id: string; key: string; origin: EntryOrigin; source: string | Clip }[] = [];
  // Claims not yet released; an abort or error releases them, so no live claim of ours is left behind.
  const held = new Set<() => Promise<void>>();
  let computed = 0;
  let present = 0;

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
          } else {
            present += 1;
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
  const [clips, computedAll, presentAll] = await settings.sumOverRanks([indices.length, computed, present]);
  return { clips, computed: computedAll, present: presentAll, failed };
}
