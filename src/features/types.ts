// The shapes shared by the on-disk feature store (store.ts), the model's use of it (use.ts) and the
// command line: fc7 embeddings per video, persisted across processes and machines.

/** How rows are kept on disk. Reads always give float32; half-size types halve the bytes. */
export type FeatureDtype = 'float32' | 'bf16' | 'fp16';

/** Where a model keeps fc7 embeddings between processes: a folder, or a folder with settings. */
export type FeatureStoreOption = string | FeatureStoreSettings;

export interface FeatureStoreSettings {
  /** The store's folder; made on first use. Several processes and machines may share it. */
  path: string;
  /** Size bound in bytes (entries only); past it, least recently used entries are evicted. Default: none. */
  maxBytes?: number;
  /** Storage type of new entries, fixed when the store is made (default 'float32'). */
  dtype?: FeatureDtype;
  /** A claim (a writer computing an entry) older than this is taken over: its writer is presumed dead. Default 10 minutes. */
  claimTtlMs?: number;
}

/** What an entry says about where its rows came from (written by the model, read by stats and prune). */
export interface EntryOrigin {
  /** The video file as the writer saw it (absolute path), or undefined for a Clip in memory. */
  source?: { path: string; size: number; mtimeMs: number; sha256: string };
  /** The backbone identity (64 hex digits) that computed the rows. */
  backbone: string;
  frameSize: number;
  sampling: { fps?: number; maxFrames?: number; frames?: number };
  /** The precision the CNN ran in ('fp32', 'bf16', 'fp16'). */
  precision: string;
}

/** One entry as read back: float32 rows [frames, dim] and what they came from. */
export interface StoredFeatures {
  frames: number;
  dim: number;
  data: Float32Array;
  origin: EntryOrigin;
}

export interface FeatureStoreStats {
  path: string;
  dtype: FeatureDtype;
  entries: number;
  bytes: number;
  /** Entries per backbone identity. */
  backbones: Record<string, { entries: number; bytes: number }>;
  /** Entries being written now or left by a writer that died (claims), and unreadable entries seen. */
  claims: number;
  /** Of those claims, the ones whose writer is gone (dead pid on this host, or older than the claim TTL). */
  staleClaims: number;
  corrupt: number;
  /** Entries being written now, or left by writers that died. */
  temporaryFiles: number;
}

export interface PruneReport {
  removed: number;
  bytesFreed: number;
  /** Why each removal happened, counted. */
  reasons: { otherBackbone: number; missingSource: number; changedSource: number; corrupt: number; staleClaim: number; temporaryFile: number };
  kept: number;
}
