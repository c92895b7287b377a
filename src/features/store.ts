// The on-disk feature store: fc7 rows per video, kept across processes and shared by machines that
// see one folder. Files with atomic renames and O_EXCL claims, not a database: see docs/features.md.
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { VideoRNNError, invalidArgument, throwIfAborted } from '../errors';
import { claimIsStale, takeClaim, HOST } from './claims';
import { EntryError, decodeEntry, encodeEntry } from './entry';
import { KEY_PATTERN, claimFile, entryFile, listStore, temporaryFile } from './layout';
import { openStoreFolder } from './folder';
import { pruneStore, storeStats, type PruneOptions } from './maintenance';
import type { EntryOrigin, FeatureDtype, FeatureStoreOption, FeatureStoreStats, PruneReport, StoredFeatures } from './types';

export { featureKey, videoDigest, videoDigestCounters } from './identity';

const DEFAULT_CLAIM_TTL_MS = 10 * 60_000;
/** `get` moves an entry's mtime (its last use, for eviction) forward at most this often. */
const TOUCH_INTERVAL_MS = 60 * 60_000;
/** Eviction frees space down to this share of the bound, so that the next puts do not evict again at once. */
const EVICTION_TARGET = 0.9;

export interface FeatureStoreCounters { hits: number; misses: number; writes: number; corrupt: number; evicted: number }

function defaultWarn(message: string): void {
  process.emitWarning(message, 'FeatureStoreWarning');
}

function checkKey(key: unknown): string {
  if (typeof key !== 'string' || !KEY_PATTERN.test(key)) throw invalidArgument('key', 'a feature key (64 lowercase hex digits)', key);
  return key;
}

function ioError(what: string, error: unknown): VideoRNNError {
  const code = (error as NodeJS.ErrnoException)?.code ?? 'error';
  return new VideoRNNError('E_IO', `${what} (${code})`, { cause: error });
}

export class FeatureStore {
  readonly path: string;
  readonly dtype: FeatureDtype;
  readonly maxBytes: number | undefined;
  readonly claimTtlMs: number;
  readonly counters: FeatureStoreCounters = { hits: 0, misses: 0, writes: 0, corrupt: 0, evicted: 0 };
  private readonly warn: (message: string) => void;
  /** Keys read or written since this store was opened: never evicted by this process (an epoch's working set). */
  private readonly workingSet = new Set<string>();
  private readonly warnedKeys = new Set<string>();
  private warnedFull = false;
  /** Bytes of all entries: a scan at open, then this process's writes and evictions, rescanned at the bound. */
  private totalBytes = 0;

  private constructor(root: string, dtype: FeatureDtype, maxBytes: number | undefined, claimTtlMs: number, warn: (message: string) => void) {
    this.path = root;
    this.dtype = dtype;
    this.maxBytes = maxBytes;
    this.claimTtlMs = claimTtlMs;
    this.warn = warn;
  }

  /** Opens the store at the folder, making it when it does not exist. */
  static async open(option: FeatureStoreOption, warn?: (message: string) => void): Promise<FeatureStore> {
    const settings = typeof option === 'string' ? { path: option } : option;
    if (settings === null || typeof settings !== 'object') throw invalidArgument('featureStore', 'a folder or { path, maxBytes, dtype }', option);
    if (typeof settings.path !== 'string' || settings.path.length === 0) throw invalidArgument('featureStore.path', 'non-empty string', settings.path);
    const { maxBytes, dtype, claimTtlMs } = settings;
    if (maxBytes !== undefined && (typeof maxBytes !== 'number' || !(maxBytes > 0) || !Number.isFinite(maxBytes))) {
      throw invalidArgument('featureStore.maxBytes', 'positive number', maxBytes);
    }
    if (dtype !== undefined && dtype !== 'float32' && dtype !== 'bf16' && dtype !== 'fp16') {
      throw invalidArgument('featureStore.dtype', "'float32', 'bf16' or 'fp16'", dtype);
    }
    if (claimTtlMs !== undefined && (typeof claimTtlMs !== 'number' || !(claimTtlMs >= 0) || !Number.isFinite(claimTtlMs))) {
      throw invalidArgument('featureStore.claimTtlMs', 'non-negative number', claimTtlMs);
    }
    if (warn !== undefined && typeof warn !== 'function') throw invalidArgument('warn', 'function', warn);
    // Entries are little-endian; every platform Node.js and LibTorch ship for is.
    if (os.endianness() !== 'LE') throw new VideoRNNError('E_FEATURE_STORE', 'The feature store needs a little-endian machine');
    const root = path.resolve(settings.path);
    const held = await openStoreFolder(root, dtype);
    const store = new FeatureStore(root, held, maxBytes, claimTtlMs ?? DEFAULT_CLAIM_TTL_MS, warn ?? defaultWarn);
    if (maxBytes !== undefined) await store.rescan();
    return store;
  }

  /** Whether an entry file exists for the key (its content is not checked). */
  async has(key: string): Promise<boolean> {
    try {
      await fs.promises.access(entryFile(this.path, checkKey(key)));
      return true;
    } catch {
      return false;
    }
  }

  /** The rows of an entry, checked against its checksum; undefined when there is none or it was unusable (then removed, with a warning). */
  async get(key: string): Promise<StoredFeatures | undefined> {
    const found = await this.read(checkKey(key));
    if (found) this.counters.hits++;
    else this.counters.misses++;
    return found;
  }

  private async read(key: string): Promise<StoredFeatures | undefined> {
    const file = entryFile(this.path, key);
    let bytes: Buffer;
    let stats: fs.Stats;
    try {
      const handle = await fs.promises.open(file, 'r');
      try {
        stats = await handle.stat();
        bytes = await handle.readFile();
      } finally {
        await handle.close();
      }
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      await this.discard(key, file, `unreadable (${(error as NodeJS.ErrnoException).code ?? 'error'})`, undefined);
      return undefined;
    }
    let decoded;
    try {
      decoded = decodeEntry(bytes, key);
    } catch (error) {
      // Whatever a damaged file makes the decoder throw, the entry is unusable, never fatal.
      await this.discard(key, file, error instanceof EntryError ? error.message : String(error), stats);
      return undefined;
    }
    this.workingSet.add(key);
    const now = Date.now();
    if (now - stats.mtimeMs > TOUCH_INTERVAL_MS) {
      const time = new Date(now);
      await fs.promises.utimes(file, time, time).catch(() => undefined);
    }
    return { frames: decoded.frames, dim: decoded.dim, data: decoded.data, origin: decoded.origin };
  }

  /** Removes an unusable entry, unless another writer has replaced the file since it was read. */
  private async discard(key: string, file: string, reason: string, seen: fs.Stats | undefined): Promise<void> {
    this.counters.corrupt++;
    if (!this.warnedKeys.has(key)) {
      this.warnedKeys.add(key);
      this.warn(`Feature store entry ${file} is unusable (${reason}); removed, its features will be computed again`);
    }
    const now = await fs.promises.stat(file).catch(() => undefined);
    if (now === undefined) return;
    if (seen !== undefined && (now.ino !== seen.ino || now.dev !== seen.dev || now.size !== seen.size || now.mtimeMs !== seen.mtimeMs)) return;
    await fs.promises.unlink(file).catch(() => undefined);
  }

  /**
   * Writes an entry atomically: a temporary file in the entry's folder, flushed to disk, then
   * renamed to its name. Returns false when the entry exists already or the size bound refuses it.
   */
  async put(key: string, rows: Float32Array, frames: number, origin: EntryOrigin): Promise<boolean> {
    checkKey(key);
    if (!(rows instanceof Float32Array)) throw invalidArgument('rows', 'Float32Array', rows);
    if (!Number.isSafeInteger(frames) || frames < 0) throw invalidArgument('frames', 'non-negative integer', frames);
    if (frames === 0 ? rows.length !== 0 : rows.length % frames !== 0) {
      throw invalidArgument('rows', `a length that is a multiple of frames (${frames})`, rows.length);
    }
    if (origin === null || typeof origin !== 'object' || typeof origin.backbone !== 'string') {
      throw invalidArgument('origin', 'an object with a backbone identity', origin);
    }
    const file = entryFile(this.path, key);
    if (await this.has(key)) return false;
    const dim = frames === 0 ? 0 : rows.length / frames;
    const bytes = encodeEntry({ key, dtype: this.dtype, frames, dim, origin, created: new Date().toISOString(), host: HOST }, rows);
    if (this.maxBytes !== undefined && !(await this.makeRoom(bytes.length))) return false;
    const folder = path.dirname(file);
    const temporary = temporaryFile(this.path, key, HOST, randomBytes(6).toString('hex'));
    try {
      await fs.promises.mkdir(folder, { recursive: true });
      const handle = await fs.promises.open(temporary, 'wx');
      try {
        await handle.writeFile(bytes);
        await handle.sync();
      } finally {
        await handle.close();
      }
      // Another writer may have finished the same entry meanwhile: keep its file, it holds the same rows.
      if (await this.has(key)) {
        await fs.promises.unlink(temporary).catch(() => undefined);
        return false;
      }
      await fs.promises.rename(temporary, file);
    } catch (error) {
      await fs.promises.unlink(temporary).catch(() => undefined);
      throw ioError(`Cannot write the feature store entry ${file}`, error);
    }
    await syncFolder(folder);
    this.totalBytes += bytes.length;
    this.counters.writes++;
    this.workingSet.add(key);
    return true;
  }

  private async rescan(): Promise<void> {
    const { entries } = await listStore(this.path, false);
    this.totalBytes = entries.reduce((sum, entry) => sum + entry.size, 0);
  }

  /** Frees room for `size` more bytes by evicting least recently used entries outside the working set. */
  private async makeRoom(size: number): Promise<boolean> {
    const bound = this.maxBytes!;
    if (this.totalBytes + size <= bound) return true;
    // Other processes write and evict too: count again before evicting anything.
    await this.rescan();
    if (this.totalBytes + size <= bound) return true;
    const { entries } = await listStore(this.path, false);
    const candidates = entries.filter((entry) => !this.workingSet.has(entry.key)).sort((a, b) => a.mtimeMs - b.mtimeMs);
    const evictable = candidates.reduce((sum, entry) => sum + entry.size, 0);
    if (size > bound || this.totalBytes - evictable + size > bound) {
      if (!this.warnedFull) {
        this.warnedFull = true;
        this.warn(`Feature store ${this.path} is full (bound ${bound} bytes) and holds only entries in use; new entries are not stored`);
      }
      return false;
    }
    for (const entry of candidates) {
      if (this.totalBytes + size <= bound * EVICTION_TARGET) break;
      try {
        await fs.promises.unlink(entry.file);
        this.counters.evicted++;
      } catch {
        // Evicted by another process already.
      }
      this.totalBytes -= entry.size;
    }
    return this.totalBytes + size <= bound;
  }

  /**
   * Claims the right to compute an entry. Returns a release function, or undefined while another
   * live writer holds the claim. A claim whose writer died (its pid is gone on this host) or that is
   * older than the claim TTL is taken over.
   */
  async claim(key: string): Promise<(() => Promise<void>) | undefined> {
    try {
      return await takeClaim(claimFile(this.path, checkKey(key)), this.claimTtlMs);
    } catch (error) {
      throw ioError(`Cannot claim in the feature store ${this.path}`, error);
    }
  }

  /**
   * Waits for an entry another writer is computing: polls until it appears (its rows), or until
   * there is no live claim on it or the timeout passes (undefined). Rejects with E_ABORTED on abort.
   */
  async waitFor(key: string, options: { timeoutMs?: number; signal?: AbortSignal } = {}): Promise<StoredFeatures | undefined> {
    checkKey(key);
    const { timeoutMs, signal } = options;
    const deadline = timeoutMs === undefined ? Infinity : Date.now() + timeoutMs;
    const claim = claimFile(this.path, key);
    for (let delay = 20; ; delay = Math.min(delay * 1.5, 500)) {
      throwIfAborted(signal, 'Waiting for a feature store entry');
      let found = await this.read(key);
      if (!found) {
        const stale = await claimIsStale(claim, this.claimTtlMs);
        if (stale === false && Date.now() < deadline) {
          try {
            await sleep(Math.min(delay, deadline - Date.now()), undefined, { signal });
          } catch {
            throwIfAborted(signal, 'Waiting for a feature store entry');
          }
          continue;
        }
        // The writer may have put the entry just before releasing its claim.
        if (stale !== false) found = await this.read(key);
      }
      if (found) this.counters.hits++;
      else this.counters.misses++;
      return found;
    }
  }

  /** Counts what the folder holds, reading each entry's headers only. */
  stats(): Promise<FeatureStoreStats> {
    return storeStats(this.path, this.dtype, this.claimTtlMs);
  }

  /** Removes entries of other backbones, of missing or changed sources, corrupt entries, and what dead writers left. */
  prune(options: PruneOptions = {}): Promise<PruneReport> {
    return pruneStore(this.path, this.claimTtlMs, options);
  }
}

/** Makes a rename durable; best effort (not every filesystem lets a folder be opened for sync). */
async function syncFolder(folder: string): Promise<void> {
  try {
    const handle = await fs.promises.open(folder, 'r');
    try {
      await handle.sync();
    } finally {
      await handle.close();
    }
  } catch {
    // The entry is written; only its durability across a power loss is less certain.
  }
}
