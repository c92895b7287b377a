// The values a restricted unpickle produces and the settings it takes: shared by the unpickler
// (pickle.ts), the torch layer on top of it (torch-pickle.ts) and the .pth reader.
import { VideoRNNError } from '../errors';

export interface PickleGlobalHandler {
  /** Called for REDUCE / NEWOBJ with the argument tuple; absent for globals that are only values. */
  call?(args: readonly unknown[]): unknown;
}

/** A class or function the pickle named, admitted by the allow-list. */
export class PickleGlobal {
  constructor(readonly module: string, readonly name: string, readonly handler: PickleGlobalHandler) {}

  get qualifiedName(): string {
    return `${this.module}.${this.name}`;
  }
}

export interface PickleLimits {
  /** Open MARKs at once (torch.save nests three). */
  maxMarkDepth: number;
  maxMemo: number;
  /** Values pushed in total: bounds the memory a pickle can make us hold. */
  maxValues: number;
}

export const DEFAULT_PICKLE_LIMITS: Readonly<PickleLimits> = {
  maxMarkDepth: 256,
  maxMemo: 1_000_000,
  maxValues: 1_000_000,
};

export interface UnpickleOptions {
  /** Named in messages: the file, and the part of it. */
  source: string;
  /** Allowed globals by "module.name". */
  globals: ReadonlyMap<string, PickleGlobalHandler>;
  persistentLoad?: (id: unknown) => unknown;
  limits?: Partial<PickleLimits>;
}

/** E_WEIGHTS_FORMAT; `endOfData` tells a caller holding only a prefix of the file to read more. */
export class PickleError extends VideoRNNError {
  constructor(message: string, readonly endOfData = false) {
    super('E_WEIGHTS_FORMAT', message);
  }
}

export function isTuple(value: unknown): value is readonly unknown[] {
  return Array.isArray(value) && Object.isFrozen(value);
}

/** A short, non-recursive description of a value for error messages. */
export function describePickleValue(value: unknown): string {
  if (value === null) return 'None';
  if (value instanceof PickleGlobal) return value.qualifiedName;
  if (Array.isArray(value)) return `a ${Object.isFrozen(value) ? 'tuple' : 'list'} of ${value.length}`;
  if (value instanceof Map) return `a dict of ${value.size}`;
  if (value instanceof Set) return 'a set';
  if (value instanceof Uint8Array) return 'bytes';
  if (typeof value === 'string') return `"${value.length > 40 ? `${value.slice(0, 40)}...` : value}"`;
  if (typeof value === 'object') return `a ${value.constructor?.name ?? 'object'}`;
  return String(value);
}
