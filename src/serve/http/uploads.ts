// Untrusted request bodies on disk: one private folder per request (mkdtemp, mode 0700), files
// created exclusively with mode 0600, all removed when the request ends, whatever the outcome.
// ffmpeg needs a seekable file: MP4s written with the index at the end cannot be decoded from a
// pipe, and probing reads the input twice (docs/serving.md has the measurement).
import fs from 'node:fs';
import path from 'node:path';
import type { Readable } from 'node:stream';
import { VideoRNNError, invalidArgument } from '../../errors';
import { HttpError } from './errors';

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

export class UploadFolder {
  private count = 0;
  private removed = false;

  private constructor(readonly folder: string) {}

  static async create(parent: string): Promise<UploadFolder> {
    return new UploadFolder(await fs.promises.mkdtemp(path.join(parent, 'video-rnn-upload-')));
  }

  /**
   * Writes `source` to a new private file and resolves with its path; rejects (and stops storing)
   * once the budget is spent, and with E_INVALID_ARGUMENT when the source was empty.
   */
  save(source: Readable, budget: ByteBudget): Promise<string> {
    const file = path.join(this.folder, String(this.count));
    this.count += 1;
    return new Promise((resolve, reject) => {
      const out = fs.createWriteStream(file, { flags: 'wx', mode: 0o600 });
      let failed = false;
      let bytes = 0;
      const fail = (error: unknown): void => {
        if (failed) return;
        failed = true;
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
      source.on('data', onData);
      source.once('end', onEnd);
      source.once('close', onClose);
      source.once('error', fail);
      out.once('error', fail);
      out.once('finish', () => {
        if (failed) return;
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
  }
}
