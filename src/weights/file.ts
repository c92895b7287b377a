import { open, type FileHandle } from 'node:fs/promises';
import { VideoRNNError, invalidArgument } from '../errors';

export function formatError(path: string, message: string, cause?: unknown): VideoRNNError {
  return new VideoRNNError('E_WEIGHTS_FORMAT', `${path}: ${message}`, cause === undefined ? undefined : { cause });
}

/**
 * Converts I/O and allocation failures into E_WEIGHTS_FORMAT. Anything else (a TypeError, say) is
 * a bug in the reader and is rethrown as it is, so that the fuzz tests can see it.
 */
export function asFormatError(path: string, error: unknown): unknown {
  if (error instanceof VideoRNNError) return error;
  const systemCode = (error as NodeJS.ErrnoException | null)?.code;
  if (typeof systemCode === 'string') return formatError(path, `cannot be read (${systemCode})`, error);
  if (error instanceof RangeError && /allocation|length/i.test(error.message)) {
    return formatError(path, `is too large to load: ${error.message}`, error);
  }
  return error;
}

// Small records (the zip tail, directory and local headers) can be read more than once, so the
// total may pass the file's size a little; twice the size means the file points at the same
// bytes over and over, which is how a small file would otherwise make us allocate gigabytes.
const READ_BUDGET_FACTOR = 2;
const READ_BUDGET_SLACK = 1 << 20;
// float32 output per stored byte: uint8/bool storages expand four times, nothing legitimate more.
const TENSOR_BUDGET_FACTOR = 4;

/**
 * A weights file opened for bounded random access: every read is checked against the file's
 * size, and the totals read and allocated for tensors are capped by what that size justifies.
 */
export class WeightsFile {
  private bytesRead = 0;
  private tensorBytes = 0;

  private constructor(readonly path: string, private readonly handle: FileHandle, readonly size: number) {}

  static async open(path: string): Promise<WeightsFile> {
    if (typeof path !== 'string' || path.length === 0) throw invalidArgument('path', 'a non-empty string', path);
    let handle: FileHandle;
    try {
      handle = await open(path, 'r');
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      if (code === 'ENOENT' || code === 'ENOTDIR') {
        throw new VideoRNNError('E_WEIGHTS_NOT_FOUND', `${path}: file not found`, { cause: error });
      }
      throw new VideoRNNError('E_IO', `${path}: cannot be opened (${code ?? 'error'})`, { cause: error });
    }
    try {
      const stats = await handle.stat();
      if (!stats.isFile()) throw formatError(path, 'is not a regular file');
      return new WeightsFile(path, handle, stats.size);
    } catch (error) {
      await handle.close().catch(() => undefined);
      throw asFormatError(path, error);
    }
  }

  /** Opens the file, runs `body`, and always closes it; errors come out as VideoRNNErrors. */
  static async use<T>(path: string, body: (file: WeightsFile) => Promise<T>): Promise<T> {
    const file = await WeightsFile.open(path);
    try {
      return await body(file);
    } catch (error) {
      throw asFormatError(path, error);
    } finally {
      await file.close();
    }
  }

  /** The open descriptor, for native code that reads ranges the index checked (native/tensor_file.h). */
  get fd(): number {
    return this.handle.fd;
  }

  error(message: string): VideoRNNError {
    return formatError(this.path, message);
  }

  /** Throws unless [position, position + length) lies inside the file. */
  checkRange(position: number, length: number, what: string): void {
    if (!Number.isSafeInteger(position) || !Number.isSafeInteger(length) || position < 0 || length < 0 ||
        position + length > this.size) {
      throw this.error(`${what} (${length} bytes at offset ${position}) extends past the end of the file (${this.size} bytes)`);
    }
  }

  /** Reads exactly `length` bytes at `position`, into `target` when given (its first `length` bytes). */
  async read(position: number, length: number, what: string, target?: Uint8Array): Promise<Uint8Array> {
    this.checkRange(position, length, what);
    this.bytesRead += length;
    if (this.bytesRead > READ_BUDGET_FACTOR * this.size + READ_BUDGET_SLACK) {
      throw this.error(`reading ${what} would read more than twice the file's size: its records overlap`);
    }
    const buffer = target ?? new Uint8Array(length);
    if (buffer.byteLength < length) throw new RangeError('read target too small');
    let done = 0;
    while (done < length) {
      const { bytesRead } = await this.handle.read(buffer, done, length - done, position + done);
      // The size was checked above, so a short read means the file shrank while we read it.
      if (bytesRead === 0) throw this.error(`ended early while reading ${what}: was it truncated while being read?`);
      done += bytesRead;
    }
    return buffer.subarray(0, length);
  }

  /** Accounts for `bytes` of float32 output; refuses more than the file's size can justify. */
  reserveTensorBytes(bytes: number, what: string): void {
    this.tensorBytes += bytes;
    if (!Number.isSafeInteger(bytes) || bytes < 0 || this.tensorBytes > TENSOR_BUDGET_FACTOR * this.size) {
      throw this.error(`${what} would need ${this.tensorBytes} bytes of tensors, more than a ${this.size}-byte file can hold`);
    }
  }

  async close(): Promise<void> {
    await this.handle.close().catch(() => undefined);
  }
}
