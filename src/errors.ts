/** Stable error codes. Tests and callers match on `code`, never on the message. */
export type ErrorCode =
  | 'E_INVALID_ARGUMENT'
  | 'E_VIDEO_NOT_FOUND'
  /** A dataset folder, manifest or class index that does not exist. */
  | 'E_DATASET_NOT_FOUND'
  /** A backbone weights file or model checkpoint that does not exist. */
  | 'E_WEIGHTS_NOT_FOUND'
  | 'E_VIDEO_DECODE'
  | 'E_NO_FFMPEG'
  | 'E_WEIGHTS_FORMAT'
  | 'E_WEIGHTS_SHAPE'
  /** A file or folder exists but could not be read or written (permissions, a full disk); the message names the system code. */
  | 'E_IO'
  /** The command line only: an unknown command or option, a missing argument, a bad option value (exit code 2). */
  | 'E_USAGE'
  | 'E_CHECKPOINT'
  /** A small checkpoint's backbone (by identity and file name hint) was not found. */
  | 'E_BACKBONE_NOT_FOUND'
  /** The backbone given or found for a checkpoint has other weights (another identity) than the one it was trained on. */
  | 'E_BACKBONE_MISMATCH'
  | 'E_CUDA_UNAVAILABLE'
  | 'E_ABORTED'
  | 'E_DISPOSED'
  | 'E_NATIVE'
  /** Training stopped because the loss became NaN or infinite; the weights are those before the batch. */
  | 'E_NON_FINITE_LOSS'
  /** A rank of a distributed run could not rendezvous, or a peer failed or timed out. */
  | 'E_DISTRIBUTED'
  /** A feature store folder that is not one (or of another format version), or a store opened with another storage dtype than it holds. */
  | 'E_FEATURE_STORE'
  /** A PredictionService's queue is full; retry later. */
  | 'E_OVERLOADED'
  /** A PredictionService call got no answer within its timeout. */
  | 'E_TIMEOUT';

export class VideoRNNError extends Error {
  readonly code: ErrorCode;

  constructor(code: ErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'VideoRNNError';
    this.code = code;
  }
}

function describe(value: unknown): string {
  if (typeof value === 'string') return `"${value}" of type string`;
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  if (typeof value === 'object') return 'an object';
  return `${String(value)} of type ${typeof value}`;
}

/** One message shape for every bad option: "Expected <what> for <name> but received <value>". */
export function invalidArgument(name: string, expected: string, received: unknown): VideoRNNError {
  return new VideoRNNError('E_INVALID_ARGUMENT',
    `Expected ${expected} for ${name} but received ${describe(received)}`);
}

export function checkInteger(name: string, value: unknown, min: number, max: number): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
    throw invalidArgument(name, `integer between ${min} and ${max}`, value);
  }
  return value;
}

export function checkNumber(name: string, value: unknown, min: number, max: number): number {
  if (typeof value !== 'number' || !Number.isFinite(value) || value < min || value > max) {
    throw invalidArgument(name, `number between ${min} and ${max}`, value);
  }
  return value;
}

export function checkString(name: string, value: unknown): string {
  if (typeof value !== 'string' || value.length === 0) throw invalidArgument(name, 'non-empty string', value);
  return value;
}

/** Rejects with E_ABORTED when the signal has fired; carries the signal's reason as the cause. */
export function throwIfAborted(signal: AbortSignal | undefined, what: string): void {
  if (signal?.aborted) throw new VideoRNNError('E_ABORTED', `${what} was aborted`, { cause: signal.reason });
}
