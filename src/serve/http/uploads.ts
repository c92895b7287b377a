// Untrusted request bodies on disk: one private folder per request (mkdtemp, mode 0700), files
// created exclusively with mode 0600, all removed when the request ends, whatever the outcome.
// ffmpeg needs a seekable file: MP4s written with the index at the end cannot be decoded from a
// pipe, and probing reads the input twice (docs/serving.md has the measurement).
// Folders are named video-rnn-upload-<pid>-XXXXXX, so a server starting later can tell the folders
// of a process that died (prepareTempDir) from those of one that still runs.
import fs from 'node:fs';
import path from 'node:path';
import type { Readable } from 'node:stream';
import { VideoRNNError, invalidArgument } from '../../errors';
import { HttpError } from './errors';

const prefix = 'video-rnn-upload-';
const ownedName = /^video-rnn-upload-(\d+)-[A-Za-z0-9]{6}$/;

/** Bytes a request may still store, shared by all of its files. */
export class ByteBudget {
  private used = 0;

  constructor(readonly limit: number) {}

  take(bytes: number): void {
    this.used += bytes;
    if (this.used > this.limit) {
      throw new HttpError('E_PAYLOAD_TOO_LARGE', `the request body is larger than ${formatMegabytes(this.limit)} (--max-body-mb)`);
    }
  }
}

export function formatMegabytes(bytes: number): string {
  return `${Number((bytes / 2 ** 20).toFixed(3))} MB`;
}

/** Every folder of this process not yet removed, for removeLiveUploadsSync. */
const live = new Set<string>();

export class UploadFolder {
  private count = 0;
  private removed = false;

  private constructor(readonly folder: string) {}

  static async create(parent: string): Promise<UploadFolder> {
    const folder = await fs.promises.mkdtemp(path.join(parent, `${prefix}${process.pid}-`));
    live.add(folder);
    return new UploadFolder(folder);
  }

  /**
   * Writes `source` to a new private file and resolves with its path; rejects (and stops storing)
   * once the budget is spent or `signal` fires, and with E_INVALID_ARGUMENT when the source was empty.
   */
  save(source: Readable, budget: ByteBudget, signal?: AbortSignal): Promise<string> {
    if (this.removed) return Promise.reject(new VideoRNNError('E_ABORTED', 'the request ended before its upload was stored'));
    if (signal?.aborted) return Promise.reject(signal.reason);
    const file = path.join(this.folder, String(this.count));
    this.count += 1;
    return new Promise((resolve, reject) => {
      const out = fs.createWriteStream(file, { flags: 'wx', mode: 0o600 });
      let failed = false;
      let bytes = 0;
      const onAbort = (): void => fail(signal?.reason);
      const fail = (error: unknown): void => {
        if (failed) return;
        failed = true;
        signal?.removeEventListener('abort', onAbort);
        source.off('data', onData);
        source.off('end', onEnd);
        out.destroy();
        // The rest of the body is read and dropped, so the error response can still be sent.
        source.resume();
        reject(error);
      };
      const onData = (chunk: Buffer): void => {
        bytes += chunk.length;
        try {
          budget.take(chunk.length);
        } catch (error) {
          fail(error);
          return;
        }
        if (!out.write(chunk)) {
          source.pause();
          out.once('drain', () => source.resume());
        }
      };
      const onEnd = (): void => { out.end(); };
      // A client that disconnects mid-upload may end the stream without an error.
      const onClose = (): void => {
        if (!source.readableEnded) fail(new VideoRNNError('E_ABORTED', 'the upload was cut off before its end'));
      };
      signal?.addEventListener('abort', onAbort, { once: true });
      source.on('data', onData);
      source.once('end', onEnd);
      source.once('close', onClose);
      source.once('error', fail);
      out.once('error', fail);
      out.once('finish', () => {
        if (failed) return;
        signal?.removeEventListener('abort', onAbort);
        if (bytes === 0) reject(invalidArgument('body', 'a video', 'an empty file'));
        else resolve(file);
      });
    });
  }

  /** Removes the folder and everything in it; safe to call more than once. */
  async remove(): Promise<void> {
    if (this.removed) return;
    this.removed = true;
    await fs.promises.rm(this.folder, { recursive: true, force: true });
    live.delete(this.folder);
  }
}

/** For a process about to exit without finishing its requests: removes every upload folder it holds. */
export function removeLiveUploadsSync(): number {
  const count = live.size;
  for (const folder of live) fs.rmSync(folder, { recursive: true, force: true });
  live.clear();
  return count;
}

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    // EPERM: the process exists but belongs to someone else.
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** E_INVALID_ARGUMENT naming `folder` unless it is a folder this process can create uploads in. */
export async function checkTempDir(folder: string): Promise<void> {
  try {
    if (!(await fs.promises.stat(folder)).isDirectory()) throw new Error('not a folder');
    await fs.promises.access(folder, fs.constants.W_OK | fs.constants.X_OK);
  } catch (error) {
    throw new VideoRNNError('E_INVALID_ARGUMENT', `tempDir: "${folder}" is not a folder this process can write to`, { cause: error });
  }
}

/**
 * Checks at start that `folder` is a folder this process can create uploads in (E_INVALID_ARGUMENT
 * naming it otherwise), then removes the upload folders left there by processes of this user that
 * no longer run. Folders named without a pid, of another user, or of a live process stay.
 */
export async function prepareTempDir(folder: string): Promise<{ swept: string[] }> {
  await checkTempDir(folder);
  const swept: string[] = [];
  for (const name of await fs.promises.readdir(folder)) {
    const match = ownedName.exec(name);
    if (!match || Number(match[1]) === process.pid || processAlive(Number(match[1]))) continue;
    const stale = path.join(folder, name);
    try {
      const stat = await fs.promises.lstat(stale);
      if (!stat.isDirectory() || (process.getuid !== undefined && stat.uid !== process.getuid())) continue;
      await fs.promises.rm(stale, { recursive: true, force: true });
      swept.push(stale);
    } catch {
      // Gone already, or not ours to remove: the sweep is best effort.
    }
  }
  return { swept };
}
