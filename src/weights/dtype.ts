import { endianness } from 'node:os';

/** Element types the readers convert to float32 (safetensors spellings). */
export type DType = 'F64' | 'F32' | 'F16' | 'BF16' | 'I64' | 'I32' | 'I16' | 'I8' | 'U64' | 'U32' | 'U16' | 'U8' | 'BOOL';

export const DTYPE_SIZES: Readonly<Record<DType, number>> = {
  F64: 8, F32: 4, F16: 2, BF16: 2, I64: 8, I32: 4, I16: 2, I8: 1, U64: 8, U32: 4, U16: 2, U8: 1, BOOL: 1,
};

export function isDType(value: unknown): value is DType {
  return typeof value === 'string' && Object.prototype.hasOwnProperty.call(DTYPE_SIZES, value);
}

export const HOST_IS_LITTLE_ENDIAN = endianness() === 'LE';

let halfToFloatBits: Uint32Array | undefined;

// IEEE 754 binary16 -> binary32 bit patterns for all 65536 halves, NaN payloads included, so that
// conversion is one table load per element and bit-exact with PyTorch's .float().
function halfTable(): Uint32Array {
  if (halfToFloatBits) return halfToFloatBits;
  const table = new Uint32Array(65536);
  for (let half = 0; half < 65536; half++) {
    const sign = (half & 0x8000) << 16;
    const exponent = (half >> 10) & 0x1f;
    let mantissa = half & 0x3ff;
    if (exponent === 0x1f) {
      table[half] = sign | 0x7f800000 | (mantissa << 13);
    } else if (exponent !== 0) {
      table[half] = sign | ((exponent + 112) << 23) | (mantissa << 13);
    } else if (mantissa === 0) {
      table[half] = sign;
    } else {
      // Subnormal half: shift until the implicit bit appears, lowering the exponent each time.
      let floatExponent = 113;
      while ((mantissa & 0x400) === 0) {
        mantissa <<= 1;
        floatExponent--;
      }
      table[half] = sign | (floatExponent << 23) | ((mantissa & 0x3ff) << 13);
    }
  }
  halfToFloatBits = table;
  return table;
}

/**
 * Returns `bytes` as a fresh, aligned buffer in host byte order. The copy is needed anyway when
 * the source is unaligned or foreign-endian; callers pass buffers they own, so the common
 * aligned host-order case is returned as is.
 */
function hostOrder(bytes: Uint8Array, elementSize: number, littleEndian: boolean): Uint8Array {
  const aligned = bytes.byteOffset % elementSize === 0;
  if (aligned && littleEndian === HOST_IS_LITTLE_ENDIAN) return bytes;
  const copy = new Uint8Array(bytes.byteLength);
  copy.set(bytes);
  if (littleEndian !== HOST_IS_LITTLE_ENDIAN && elementSize > 1) {
    for (let start = 0; start < copy.length; start += elementSize) {
      for (let low = start, high = start + elementSize - 1; low < high; low++, high--) {
        const swap = copy[low];
        copy[low] = copy[high];
        copy[high] = swap;
      }
    }
  }
  return copy;
}

/**
 * Converts `bytes` (a whole number of `dtype` elements) to float32. F32 in host order comes back
 * as a view of the same memory, so pass a buffer nobody else holds.
 */
export function toFloat32(bytes: Uint8Array, dtype: DType, littleEndian: boolean): Float32Array {
  const size = DTYPE_SIZES[dtype];
  if (bytes.byteLength % size !== 0) throw new RangeError(`byte length ${bytes.byteLength} is not a multiple of ${size}`);
  const count = bytes.byteLength / size;
  const source = hostOrder(bytes, size, littleEndian);
  const { buffer, byteOffset } = source;
  switch (dtype) {
    case 'F32':
      return new Float32Array(buffer, byteOffset, count);
    case 'F64':
      return widened(new Float64Array(buffer, byteOffset, count));
    case 'F16': {
      const table = halfTable();
      const halves = new Uint16Array(buffer, byteOffset, count);
      const bits = new Uint32Array(count);
      for (let index = 0; index < count; index++) bits[index] = table[halves[index]];
      return new Float32Array(bits.buffer);
    }
    case 'BF16': {
      // bfloat16 is the top half of a float32.
      const halves = new Uint16Array(buffer, byteOffset, count);
      const bits = new Uint32Array(count);
      for (let index = 0; index < count; index++) bits[index] = halves[index] << 16;
      return new Float32Array(bits.buffer);
    }
    case 'I64':
      return bigIntsToFloat32(new BigInt64Array(buffer, byteOffset, count));
    case 'U64':
      return bigIntsToFloat32(new BigUint64Array(buffer, byteOffset, count));
    case 'I32':
      return widened(new Int32Array(buffer, byteOffset, count));
    case 'U32':
      return widened(new Uint32Array(buffer, byteOffset, count));
    case 'I16':
      return widened(new Int16Array(buffer, byteOffset, count));
    case 'U16':
      return widened(new Uint16Array(buffer, byteOffset, count));
    case 'I8':
      return widened(new Int8Array(buffer, byteOffset, count));
    case 'U8':
      return widened(new Uint8Array(buffer, byteOffset, count));
    case 'BOOL': {
      const values = new Uint8Array(buffer, byteOffset, count);
      const out = new Float32Array(count);
      for (let index = 0; index < count; index++) out[index] = values[index] === 0 ? 0 : 1;
      return out;
    }
  }
}

function widened(values: Float64Array | Int32Array | Uint32Array | Int16Array | Uint16Array | Int8Array | Uint8Array): Float32Array {
  const out = new Float32Array(values.length);
  out.set(values);
  return out;
}

function bigIntsToFloat32(values: BigInt64Array | BigUint64Array): Float32Array {
  const out = new Float32Array(values.length);
  // Exact for |v| < 2^53; beyond that the value is rounded twice (to double, then to float).
  for (let index = 0; index < values.length; index++) out[index] = Number(values[index]);
  return out;
}
