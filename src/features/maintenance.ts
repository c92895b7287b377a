// stats and prune: one walk over the store, reading each entry's headers only (unless asked to verify).
import fs from 'node:fs';
import { claimIsStale, isStale } from './claims';
import { EntryError, decodeEntry, readEntryHeader, type EntryHeader } from './entry';
import { videoDigest } from './identity';
import { listStore, type ListedEntry } from './layout';
import type { FeatureDtype, FeatureStoreStats, PruneReport } from './types';

export interface PruneOptions {
  /** Remove entries made by any other backbone identity. */
  keepBackbones?: string[];
  /** Remove entries whose source video no longer exists (as this machine sees its path). */
  missingSources?: boolean;
  /** Remove entries whose source video changed: size or mtime differ, then its SHA-256 differs. */
  changedSources?: boolean;
  /** Also read every entry whole and check its checksum (slow: reads every byte of the store). */
  verify?: boolean;
  /** Report what would be removed, remove nothing. */
  dryRun?: boolean;
}

async function header(entry: ListedEntry, verify: boolean): Promise<EntryHeader | undefined> {
  try {
    if (verify) return decodeEntry(await fs.promises.readFile(entry.file), entry.key).header;
    return (await readEntryHeader(entry.file, entry.key)).header;
  } catch (error) {
    if (error instanceof EntryError) return undefined;
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    return undefined;
  }
}

export async function storeStats(root: string, dtype: FeatureDtype, ttlMs: number): Promise<FeatureStoreStats> {
  const listing = await listStore(root);
  const stats: FeatureStoreStats = {
    path: root, dtype, entries: 0, bytes: 0, backbones: {}, claims: 0, staleClaims: 0, corrupt: 0, temporaryFiles: listing.temporaries.length,
  };
  for (const entry of listing.entries) {
    const found = await header(entry, false);
    if (found === undefined) {
      if (fs.existsSync(entry.file)) stats.corrupt++;
      continue;
    }
    stats.entries++;
    stats.bytes += entry.size;
    const backbone = (stats.backbones[found.origin.backbone] ??= { entries: 0, bytes: 0 });
    backbone.entries++;
    backbone.bytes += entry.size;
  }
  for (const claim of listing.claims) {
    const stale = await claimIsStale(claim.file, ttlMs);
    if (stale === undefined) continue;
    stats.claims++;
    if (stale) stats.staleClaims++;
  }
  return stats;
}

type Reason = keyof PruneReport['reasons'];

async function sourceReason(found: EntryHeader, options: PruneOptions): Promise<Reason | undefined> {
  const source = found.origin.source;
  if (!source || (!options.missingSources && !options.changedSources)) return undefined;
  let now: fs.Stats;
  try {
    now = await fs.promises.stat(source.path);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    return options.missingSources && (code === 'ENOENT' || code === 'ENOTDIR') ? 'missingSource' : undefined;
  }
  if (!options.changedSources) return undefined;
  if (now.size === source.size && Math.abs(now.mtimeMs - source.mtimeMs) < 0.001) return undefined;
  try {
    return (await videoDigest(source.path)).sha256 === source.sha256 ? undefined : 'changedSource';
  } catch {
    return undefined;
  }
}

export async function pruneStore(root: string, ttlMs: number, options: PruneOptions): Promise<PruneReport> {
  const report: PruneReport = {
    removed: 0, bytesFreed: 0, kept: 0,
    reasons: { otherBackbone: 0, missingSource: 0, changedSource: 0, corrupt: 0, staleClaim: 0, temporaryFile: 0 },
  };
  const keep = options.keepBackbones === undefined ? undefined : new Set(options.keepBackbones);
  const remove = async (file: string, reason: Reason, size: number): Promise<void> => {
    if (!options.dryRun) {
      try {
        await fs.promises.unlink(file);
      } catch {
        return;
      }
    }
    report.reasons[reason]++;
    if (reason !== 'staleClaim') {
      report.removed++;
      report.bytesFreed += size;
    }
  };
  const listing = await listStore(root);
  for (const entry of listing.entries) {
    const found = await header(entry, options.verify === true);
    let reason: Reason | undefined;
    if (found === undefined) reason = fs.existsSync(entry.file) ? 'corrupt' : undefined;
    else if (keep !== undefined && !keep.has(found.origin.backbone)) reason = 'otherBackbone';
    else reason = await sourceReason(found, options);
    if (found === undefined && reason === undefined) continue;
    if (reason === undefined) report.kept++;
    else await remove(entry.file, reason, entry.size);
  }
  for (const claim of listing.claims) {
    if (await claimIsStale(claim.file, ttlMs)) await remove(claim.file, 'staleClaim', 0);
  }
  for (const temporary of listing.temporaries) {
    if (!isStale(temporary.host, temporary.pid, temporary.mtimeMs, ttlMs)) continue;
    const size = (await fs.promises.stat(temporary.file).catch(() => undefined))?.size ?? 0;
    await remove(temporary.file, 'temporaryFile', size);
  }
  return report;
}
