// Claims: "this writer is computing that entry". A claim is a file made with O_EXCL, which is atomic
// on local filesystems and on NFSv3 and later. It says who holds it (host, pid) and since when, so that
// a claim left by a writer that died is recognised: its pid is gone on this host, or it is older
// than the time to live (a writer on another host cannot be checked any other way).
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

export interface ClaimRecord {
  host: string;
  pid: number;
  time: number;
  token: string;
}

export const HOST = os.hostname();

export function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    // EPERM: the process exists but belongs to someone else.
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** A writer's leftover is stale when its pid is dead on this host, or when it is older than the TTL. */
export function isStale(host: string, pid: number, time: number, ttlMs: number, now = Date.now()): boolean {
  if (host === HOST && Number.isInteger(pid) && pid > 0 && !processAlive(pid)) return true;
  return now - time > ttlMs;
}

export async function readClaim(file: string): Promise<ClaimRecord | undefined | 'unreadable'> {
  let text: string;
  try {
    text = await fs.promises.readFile(file, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    return 'unreadable';
  }
  try {
    const record = JSON.parse(text) as ClaimRecord;
    if (typeof record.host !== 'string' || typeof record.pid !== 'number' || typeof record.time !== 'number') return 'unreadable';
    return record;
  } catch {
    return 'unreadable';
  }
}

/** Whether a claim file is stale; an unreadable one (a writer died while making it) is judged by its mtime. */
export async function claimIsStale(file: string, ttlMs: number): Promise<boolean | undefined> {
  const record = await readClaim(file);
  if (record === undefined) return undefined;
  if (record !== 'unreadable') return isStale(record.host, record.pid, record.time, ttlMs);
  try {
    const stats = await fs.promises.stat(file);
    return Date.now() - stats.mtimeMs > Math.min(ttlMs, 60_000);
  } catch {
    return undefined;
  }
}

async function create(file: string, record: ClaimRecord): Promise<boolean> {
  try {
    await fs.promises.writeFile(file, JSON.stringify(record), { flag: 'wx' });
    return true;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'EEXIST') return false;
    throw error;
  }
}

/**
 * Takes the claim `file`, or takes over a stale one. Returns the release function, or undefined
 * when a live writer holds it. A stale claim is first renamed to a name of this writer's own, so
 * that of two writers taking over the same claim only one removes it.
 */
export async function takeClaim(file: string, ttlMs: number): Promise<(() => Promise<void>) | undefined> {
  await fs.promises.mkdir(path.dirname(file), { recursive: true });
  const record: ClaimRecord = { host: HOST, pid: process.pid, time: Date.now(), token: randomBytes(8).toString('hex') };
  for (let attempt = 0; attempt < 3; attempt++) {
    if (await create(file, record)) return release(file, record.token);
    const stale = await claimIsStale(file, ttlMs);
    if (stale === false) return undefined;
    if (stale === undefined) continue;
    const before = await readClaim(file);
    const aside = `${file}.${record.token}.stale`;
    try {
      await fs.promises.rename(file, aside);
    } catch {
      continue;
    }
    // Another writer may have taken over between the check and the rename: if what was moved is not
    // the claim judged stale, put it back (link fails when the name is taken again) and step aside.
    const moved = await readClaim(aside);
    const same = before === 'unreadable' ? moved === 'unreadable'
      : before !== undefined && moved !== undefined && moved !== 'unreadable' && moved.token === before.token;
    if (!same) {
      await fs.promises.link(aside, file).catch(() => undefined);
      await fs.promises.unlink(aside).catch(() => undefined);
      return undefined;
    }
    await fs.promises.unlink(aside).catch(() => undefined);
  }
  return undefined;
}

function release(file: string, token: string): () => Promise<void> {
  let released = false;
  return async () => {
    if (released) return;
    released = true;
    const record = await readClaim(file);
    // Never remove a claim someone else took over after this one went stale.
    if (record !== undefined && record !== 'unreadable' && record.token === token) {
      await fs.promises.unlink(file).catch(() => undefined);
    }
  };
}
