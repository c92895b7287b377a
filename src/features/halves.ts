// Half-size storage of float32 rows: bfloat16 (the upper half of a float32, rounded to nearest
// even) and IEEE 754 binary16. Both work on the float32 bit patterns, so the result does not depend
// on how JavaScript rounds doubles.

/** bfloat16 bits of each value: round to nearest, ties to even; NaN stays a (quiet) NaN. */
export function toBf16(values: Float32Array): Uint16Array {
  const bits = new Uint32Array(values.buffer, values.byteOffset, values.length);
  const out = new Uint16Array(values.length);
  for (let i = 0; i < bits.length; i++) {
    const x = bits[i]!;
    if ((x & 0x7fffffff) > 0x7f800000) {
      out[i] = (x >>> 16) | 0x0040;
    } else {
      // Adding 0x7fff plus the lowest kept bit rounds half to even; a carry into the exponent is right.
      out[i] = ((x + 0x7fff + ((x >>> 16) & 1)) >>> 0) >>> 16;
    }
  }
  return out;
}

export function fromBf16(halves: Uint16Array, out: Float32Array): void {
  const bits = new Uint32Array(out.buffer, out.byteOffset, out.length);
  for (let i = 0; i < halves.length; i++) bits[i] = halves[i]! << 16;
}

/** Largest finite binary16 value, 65504, as bits. */
const FP16_MAX = 0x7bff;

/**
 * binary16 bits of each value, rounded to nearest, ties to even, with subnormals. A finite value
 * beyond binary16's range saturates to ±65504 instead of becoming infinite (a stored infinity would
 * turn a training loss into NaN); infinities and NaN are kept.
 */
export function toFp16(values: Float32Array): Uint16Array {
  const bits = new Uint32Array(values.buffer, values.byteOffset, values.length);
  const out = new Uint16Array(values.length);
  for (let i = 0; i < bits.length; i++) {
    const x = bits[i]!;
    const sign = (x >>> 16) & 0x8000;
    const magnitude = x & 0x7fffffff;
    if (magnitude > 0x7f800000) {
      out[i] = sign | 0x7e00;
    } else if (magnitude === 0x7f800000) {
      out[i] = sign | 0x7c00;
    } else if (magnitude >= 0x477fe000) {
      // 65504 and above (still finite in float32).
      out[i] = sign | FP16_MAX;
    } else if (magnitude < 0x38800000) {
      // Below 2^-14: a subnormal binary16 counts units of 2^-24. The product is exact in a double.
      const scaled = Math.abs(values[i]!) * 16777216;
      let units = Math.floor(scaled);
      const rest = scaled - units;
      if (rest > 0.5 || (rest === 0.5 && (units & 1) === 1)) units++;
      out[i] = sign | units;
    } else {
      const exponent = (magnitude >>> 23) - 127 + 15;
      const mantissa = magnitude & 0x7fffff;
      let half = (exponent << 10) | (mantissa >>> 13);
      const rest = mantissa & 0x1fff;
      if (rest > 0x1000 || (rest === 0x1000 && (half & 1) === 1)) half++;
      out[i] = sign | half;
    }
  }
  return out;
}

let fp16Table: Float32Array | undefined;

/** Every binary16 pattern's float32 value, built once (256 KiB). */
function fp16Values(): Float32Array {
  if (fp16Table) return fp16Table;
  const table = new Float32Array(65536);
  for (let h = 0; h < 65536; h++) {
    const sign = h & 0x8000 ? -1 : 1;
    const exponent = (h >>> 10) & 0x1f;
    const mantissa = h & 0x3ff;
    if (exponent === 0) table[h] = sign * mantissa * 2 ** -24;
    else if (exponent === 31) table[h] = mantissa === 0 ? sign * Infinity : NaN;
    else table[h] = sign * (1 + mantissa / 1024) * 2 ** (exponent - 15);
  }
  fp16Table = table;
  return table;
}

export function fromFp16(halves: Uint16Array, out: Float32Array): void {
  const table = fp16Values();
  for (let i = 0; i < halves.length; i++) out[i] = table[halves[i]!]!;
}
