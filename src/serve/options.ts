// Limits of a PredictionService, validated once with the library's message shape.
import os from 'node:os';
import { checkInteger, checkNumber, invalidArgument } from '../errors';

export interface PredictionServiceOptions {
  /** A batch closes once it holds this many clips (default 8). 1 turns dynamic batching off. */
  maxBatchClips?: number;
  /** ...or this many milliseconds after its first clip was ready, whichever comes first (default 5). */
  maxDelayMs?: number;
  /** Clips accepted but not yet in a running batch; beyond it calls reject with E_OVERLOADED (default 64). */
  maxQueue?: number;
  /** A call still unanswered after this many milliseconds rejects with E_TIMEOUT (default 30000). */
  timeoutMs?: number;
  /** Videos decoded at once, ahead of the model (default: the number of cores). */
  decodeConcurrency?: number;
  /** Longer videos reject with E_VIDEO_DECODE before they are decoded (default: no limit). */
  maxVideoSeconds?: number;
}

export interface ServiceLimits {
  maxBatchClips: number;
  maxDelayMs: number;
  maxQueue: number;
  timeoutMs: number;
  decodeConcurrency: number;
  maxVideoSeconds: number | undefined;
}

const optionNames = ['maxBatchClips', 'maxDelayMs', 'maxQueue', 'timeoutMs', 'decodeConcurrency', 'maxVideoSeconds'];
// setTimeout's largest delay (a signed 32-bit number of milliseconds).
const longestTimer = 2_147_483_647;

export function resolveLimits(options: unknown): ServiceLimits {
  if (options === undefined) options = {};
  if (typeof options !== 'object' || options === null || Array.isArray(options)) throw invalidArgument('options', 'an object', options);
  const raw = options as Record<string, unknown>;
  for (const key of Object.keys(raw)) {
    if (!optionNames.includes(key)) throw invalidArgument('option name', `one of ${optionNames.join(', ')}`, key);
  }
  return {
    maxBatchClips: checkInteger('maxBatchClips', raw.maxBatchClips ?? 8, 1, 1024),
    maxDelayMs: checkNumber('maxDelayMs', raw.maxDelayMs ?? 5, 0, 60_000),
    maxQueue: checkInteger('maxQueue', raw.maxQueue ?? 64, 1, 1_000_000),
    timeoutMs: checkInteger('timeoutMs', raw.timeoutMs ?? 30_000, 1, longestTimer),
    decodeConcurrency: checkInteger('decodeConcurrency', raw.decodeConcurrency ?? os.availableParallelism(), 1, 1024),
    maxVideoSeconds: raw.maxVideoSeconds === undefined ? undefined : checkNumber('maxVideoSeconds', raw.maxVideoSeconds, 0.001, 1e9),
  };
}
