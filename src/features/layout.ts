// Where things live in a store folder, and one walk over it shared by the size bound, stats and prune.
//
//   DIR/store.json                    { format, version, dtype }
//   DIR/entries/<2 hex>/<key>.feat    one entry (entry.ts); <2 hex> is the key's first byte
//   DIR/entries/<2 hex>/.<key>.<pid>.<host hex>.<random>.tmp   an entry being written
//   DIR/claims/<key>.claim            a writer computing that entry (claims.ts)
//   DIR/claims/<key>.claim.<token>.stale   a stale claim set aside while a writer takes it over
import fs from 'node:fs';
import path from 'node:path';

export const STORE_FORMAT = 'video-rnn-features';
export const STORE_VERSION = 1;
export const ENTRY_EXTENSION = '.feat';
export const KEY_PATTERN = /^[0-9a-f]{64}$/;

export function entryFile(root: string, key: string): string {
  return path.join(root, 'entries', key.slice(0, 2), `${key}${ENTRY_EXTENSION}`);
}

export function claimFile(root: string, key: string): string {
  return path.join(root, 'claims', `${key}.claim`);
}

export function temporaryFile(root: string, key: string, host: string, random: string): string {
  return path.join(root, 'entries', key.slice(0, 2), `.${key}.${process.pid}.${Buffer.from(host).toString('hex')}.${random}.tmp`);
}

export interface ListedEntry { key: string; file: string; size: number; mtimeMs: number }
export interface ListedTemporary { file: string; pid: number; host: string; mtimeMs: number }
export interface Listing { entries: ListedEntry[]; temporaries: ListedTemporary[]; claims: { key: string; file: string }[] }

async function names(folder: string): Promise<string[]> {
  try {
    return await fs.promises.readdir(folder);
  } catch {
    return [];
  }
}

/** Every entry with its size and mtime, every temporary file and claim; files that vanish meanwhile are skipped. */
export async function listStore(root: string, withTemporaries = true): Promise<Listing> {
  const listing: Listing = { entries: [], temporaries: [], claims: [] };
  for (const shard of await names(path.join(root, 'entries'))) {
    if (!/^[0-9a-f]{2}$/.test(shard)) continue;
    const folder = path.join(root, 'entries', shard);
    for (const name of await names(folder)) {
      const file = path.join(folder, name);
      if (name.endsWith(ENTRY_EXTENSION)) {
        const key = name.slice(0, -ENTRY_EXTENSION.length);
        if (!KEY_PATTERN.test(key)) continue;
        const stats = await fs.promises.stat(file).catch(() => undefined);
        if (stats?.isFile()) listing.entries.push({ key, file, size: stats.size, mtimeMs: stats.mtimeMs });
      } else if (withTemporaries && name.startsWith('.') && name.endsWith('.tmp')) {
        const parts = name.split('.');
        const stats = await fs.promises.stat(file).catch(() => undefined);
        if (!stats) continue;
        listing.temporaries.push({ file, pid: Number(parts[2]), host: Buffer.from(parts[3] ?? '', 'hex').toString(), mtimeMs: stats.mtimeMs });
      }
    }
  }
  for (const name of await names(path.join(root, 'claims'))) {
    const file = path.join(root, 'claims', name);
    if (name.endsWith('.claim')) {
      listing.claims.push({ key: name.slice(0, -'.claim'.length), file });
    } else if (withTemporaries && /^[0-9a-f]+\.claim\.[0-9a-f]+\.stale$/.test(name)) {
      // A stale claim a writer set aside to take over (claims.ts), left behind when it died before
      // removing it. Judged by its ctime, which the rename set: its mtime is the old claim's.
      const stats = await fs.promises.stat(file).catch(() => undefined);
      if (stats?.isFile()) listing.temporaries.push({ file, pid: Number.NaN, host: '', mtimeMs: stats.ctimeMs });
    }
  }
  return listing;
}
