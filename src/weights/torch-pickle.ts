import type { HostTensor, TensorMap } from '../clip';
import { DTYPE_SIZES, toFloat32, type DType } from './dtype';
import type { WeightsFile } from './file';
import { describePickleValue, isTuple, PickleGlobal, type PickleGlobalHandler } from './pickle-values';

/** A storage a torch pickle refers to by persistent id; its bytes live outside the pickle. */
export class StorageRef {
  constructor(readonly key: string, readonly dtype: DType, readonly numel: number) {}
}

/** What torch._utils._rebuild_tensor_v2 would build: a strided view of a storage. */
export class TensorRef {
  constructor(readonly storage: StorageRef, readonly offset: number, readonly shape: readonly number[],
              readonly stride: readonly number[]) {}
}

// torch's legacy typed-storage class names (torch/storage.py), which both formats still pickle.
const STORAGE_DTYPES: ReadonlyMap<string, DType> = new Map([
  ['FloatStorage', 'F32'], ['DoubleStorage', 'F64'], ['HalfStorage', 'F16'], ['BFloat16Storage', 'BF16'],
  ['LongStorage', 'I64'], ['IntStorage', 'I32'], ['ShortStorage', 'I16'], ['CharStorage', 'I8'],
  ['ByteStorage', 'U8'], ['BoolStorage', 'BOOL'],
]);

const MAX_DIMENSIONS = 32;

function isCount(value: unknown): value is number {
  return typeof value === 'number' && Number.isSafeInteger(value) && value >= 0;
}

/**
 * The allow-list for torch pickles: the globals a state dict of dense CPU tensors needs, and
 * nothing that could run code. Each handler checks its arguments and builds a plain value.
 */
export function torchGlobals(file: WeightsFile): Map<string, PickleGlobalHandler> {
  const counts = (value: unknown, what: string): number[] => {
    if (!Array.isArray(value) || value.length > MAX_DIMENSIONS || !value.every(isCount)) {
      throw file.error(`tensor ${what} is ${describePickleValue(value)}, not a tuple of non-negative integers`);
    }
    return [...value] as number[];
  };
  const rebuildTensor = (args: readonly unknown[]): TensorRef => {
    const [storage, offset, shape, stride] = args;
    if (!(storage instanceof StorageRef)) throw file.error(`tensor storage is ${describePickleValue(storage)}`);
    if (!isCount(offset)) throw file.error(`tensor storage offset is ${describePickleValue(offset)}`);
    const sizes = counts(shape, 'shape');
    const strides = counts(stride, 'stride');
    if (sizes.length !== strides.length) throw file.error(`tensor shape [${sizes}] and stride [${strides}] differ in length`);
    return new TensorRef(storage, offset, sizes, strides);
  };
  const globals = new Map<string, PickleGlobalHandler>([
    ['collections.OrderedDict', {
      call: (args) => {
        if (args.length === 0) return new Map();
        throw file.error('OrderedDict is built with arguments');
      },
    }],
    // (storage, storage_offset, size, stride, requires_grad, backward_hooks[, metadata])
    ['torch._utils._rebuild_tensor_v2', {
      call: (args) => {
        if (args.length !== 6 && args.length !== 7) throw file.error(`_rebuild_tensor_v2 takes 6 or 7 arguments, got ${args.length}`);
        return rebuildTensor(args);
      },
    }],
    // (storage, storage_offset, size, stride), from older torch releases
    ['torch._utils._rebuild_tensor', {
      call: (args) => {
        if (args.length !== 4) throw file.error(`_rebuild_tensor takes 4 arguments, got ${args.length}`);
        return rebuildTensor(args);
      },
    }],
    // nn.Parameter saved directly: (data, requires_grad, backward_hooks[, state]); the data is what we need.
    ['torch._utils._rebuild_parameter', { call: (args) => parameterData(file, args, 3) }],
    ['torch._utils._rebuild_parameter_with_state', { call: (args) => parameterData(file, args, 4) }],
  ]);
  for (const name of STORAGE_DTYPES.keys()) globals.set(`torch.${name}`, {});
  return globals;
}

function parameterData(file: WeightsFile, args: readonly unknown[], count: number): TensorRef {
  if (args.length !== count || !(args[0] instanceof TensorRef)) {
    throw file.error(`a parameter is rebuilt from ${args.length} arguments starting with ${describePickleValue(args[0])}`);
  }
  return args[0];
}

/**
 * Turns a persistent id ('storage', <storage class>, key, location, numel, ...) into a
 * StorageRef, one per key. The zip format has 5 fields; the legacy one adds a view field (None).
 */
export class StorageTable {
  readonly byKey = new Map<string, StorageRef>();

  constructor(private readonly file: WeightsFile, private readonly fields: number) {}

  load(id: unknown): StorageRef {
    const file = this.file;
    if (!isTuple(id) || id.length !== this.fields || id[0] !== 'storage') {
      throw file.error(`persistent id ${describePickleValue(id)} is not a storage (was a whole model saved instead of its state_dict()?)`);
    }
    const [, type, key, location, numel] = id;
    const dtype = type instanceof PickleGlobal && type.module === 'torch' ? STORAGE_DTYPES.get(type.name) : undefined;
    if (!dtype) throw file.error(`storage type ${describePickleValue(type)} is not supported`);
    if (typeof key !== 'string' || typeof location !== 'string') throw file.error('storage key or location is not a string');
    if (!isCount(numel) || numel * DTYPE_SIZES[dtype] > file.size) {
      throw file.error(`storage ${key} declares ${describePickleValue(numel)} elements, more than the file holds`);
    }
    if (this.fields === 6 && id[5] !== null) throw file.error(`storage ${key} is a storage view, which torch no longer writes`);
    const known = this.byKey.get(key);
    if (known) {
      if (known.dtype !== dtype || known.numel !== numel) throw file.error(`storage ${key} is declared twice, differently`);
      return known;
    }
    const storage = new StorageRef(key, dtype, numel);
    this.byKey.set(key, storage);
    return storage;
  }
}

/**
 * Finds the tensors of a state dict in a torch pickle's value: the dict itself, or one wrapped
 * under "state_dict" or "model" as training scripts save them. Entries that are not tensors
 * (hyper-parameters, extra state) are not weights and are skipped.
 */
export function stateDictTensors(file: WeightsFile, value: unknown): Map<string, TensorRef> {
  if (!(value instanceof Map)) throw file.error(`holds ${describePickleValue(value)}, not a dict of tensors`);
  let dict: Map<unknown, unknown> = value;
  for (const wrapper of ['state_dict', 'model']) {
    const inner = value.get(wrapper);
    if (inner instanceof Map) {
      dict = inner;
      break;
    }
  }
  const tensors = new Map<string, TensorRef>();
  for (const [key, item] of dict) {
    if (!(item instanceof TensorRef)) continue;
    if (typeof key !== 'string') throw file.error(`has a tensor under the key ${describePickleValue(key)}, not a string`);
    tensors.set(key, item);
  }
  return tensors;
}

function elementCount(file: WeightsFile, name: string, tensor: TensorRef): number {
  const { shape, stride, offset, storage } = tensor;
  let numel = 1;
  let lastIndex = offset;
  for (let dimension = 0; dimension < shape.length; dimension++) {
    numel *= shape[dimension];
    if (shape[dimension] > 0) lastIndex += (shape[dimension] - 1) * stride[dimension];
  }
  if (numel === 0) {
    if (offset > storage.numel) throw file.error(`tensor ${name} starts past the end of its storage`);
    return 0;
  }
  if (lastIndex >= storage.numel) {
    throw file.error(`tensor ${name} (shape [${shape}], stride [${stride}], offset ${offset}) reaches past its ` +
      `storage of ${storage.numel} elements`);
  }
  return numel;
}

function isContiguous(shape: readonly number[], stride: readonly number[]): boolean {
  let expected = 1;
  for (let dimension = shape.length - 1; dimension >= 0; dimension--) {
    if (shape[dimension] !== 1 && stride[dimension] !== expected) return false;
    expected *= shape[dimension];
  }
  return true;
}

/** Copies a strided view into a new contiguous array; bit patterns (NaN payloads) are kept. */
function gather(source: Float32Array, tensor: TensorRef, numel: number): Float32Array {
  const out = new Float32Array(numel);
  const { shape, stride, offset } = tensor;
  if (numel === 0) return out;
  if (isContiguous(shape, stride)) {
    out.set(source.subarray(offset, offset + numel));
    return out;
  }
  const from = new Uint32Array(source.buffer, source.byteOffset, source.length);
  const to = new Uint32Array(out.buffer);
  const last = shape.length - 1;
  const innerSize = shape[last];
  const innerStride = stride[last];
  const index = new Array<number>(last).fill(0);
  let base = offset;
  let write = 0;
  for (let row = 0, rows = numel / innerSize; row < rows; row++) {
    for (let column = 0, read = base; column < innerSize; column++, read += innerStride) to[write++] = from[read];
    // Advance the odometer over the outer dimensions.
    for (let dimension = last - 1; dimension >= 0; dimension--) {
      base += stride[dimension];
      if (++index[dimension] < shape[dimension]) break;
      base -= stride[dimension] * shape[dimension];
      index[dimension] = 0;
    }
  }
  return out;
}

/**
 * Reads each needed storage once (through `load`, which returns exactly its bytes) and builds
 * the contiguous float32 tensors. A tensor that is the sole, whole, contiguous view of a float32
 * storage takes the storage's memory without a copy.
 */
export async function materialize(file: WeightsFile, tensors: Map<string, TensorRef>,
                                  load: (storage: StorageRef) => Promise<Uint8Array>,
                                  littleEndian: boolean): Promise<TensorMap> {
  const counts = new Map<string, number>();
  const users = new Map<StorageRef, number>();
  for (const [name, tensor] of tensors) {
    counts.set(name, elementCount(file, name, tensor));
    users.set(tensor.storage, (users.get(tensor.storage) ?? 0) + 1);
  }
  const pending = new Map(users);
  const converted = new Map<StorageRef, Float32Array>();
  const result: TensorMap = new Map();
  for (const [name, tensor] of tensors) {
    const { storage } = tensor;
    const numel = counts.get(name) as number;
    let source = converted.get(storage);
    if (!source) {
      const bytes = await load(storage);
      if (storage.dtype !== 'F32') file.reserveTensorBytes(storage.numel * 4, `storage ${storage.key}`);
      source = toFloat32(bytes, storage.dtype, littleEndian);
      converted.set(storage, source);
    }
    const remaining = (pending.get(storage) as number) - 1;
    pending.set(storage, remaining);
    if (remaining === 0) converted.delete(storage);
    let data: Float32Array;
    if (users.get(storage) === 1 && tensor.offset === 0 && numel === storage.numel &&
        isContiguous(tensor.shape, tensor.stride) && source.byteLength === source.buffer.byteLength) {
      data = source;
    } else {
      file.reserveTensorBytes(numel * 4, `tensor ${name}`);
      data = gather(source, tensor, numel);
    }
    const host: HostTensor = { shape: [...tensor.shape], data };
    result.set(name, host);
  }
  return result;
}
