// Deterministic frames and in-memory datasets for tests that do not need video files.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

/** A clip of `frames` RGB frames, size x size, whose bytes depend on `seed`. */
export function makeClip(frames, size, seed = 1) {
  const data = new Uint8Array(frames * size * size * 3);
  let state = (seed * 2654435761) >>> 0;
  for (let i = 0; i < data.length; i += 1) {
    state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
    data[i] = state >>> 24;
  }
  return { data, frames, height: size, width: size };
}

/** A Dataset over in-memory clips: samples [{ clip, label }] and class names. */
export function memoryDataset(classes, samples) {
  return {
    classes,
    size: samples.length,
    sample: (index) => ({ id: `memory-${index}`, label: samples[index].label, source: samples[index].clip }),
  };
}

export function tempDir(prefix = 'video-rnn-test-') {
  return fs.mkdtempSync(path.join(os.tmpdir(), prefix));
}

export function maxAbsDiff(a, b) {
  if (a.length !== b.length) throw new Error(`length ${a.length} vs ${b.length}`);
  let max = 0;
  for (let i = 0; i < a.length; i += 1) max = Math.max(max, Math.abs(a[i] - b[i]));
  return max;
}

/**
 * The largest difference between the tensors of two safetensors files. Both files must hold the
 * same tensor names with the same shapes: a tensor in only one of them (either one) fails, as
 * does a shape that differs, so a file that holds more or fewer tensors cannot compare as equal.
 */
export async function maxParameterDifference(fileA, fileB) {
  const { readSafetensors } = await import('../../dist/index.js');
  const [a, b] = await Promise.all([readSafetensors(fileA), readSafetensors(fileB)]);
  const onlyIn = (first, second) => [...first.tensors.keys()].filter((name) => !second.tensors.has(name));
  assert.deepEqual({ [`only in ${fileA}`]: onlyIn(a, b), [`only in ${fileB}`]: onlyIn(b, a) },
    { [`only in ${fileA}`]: [], [`only in ${fileB}`]: [] }, 'the two files hold the same tensor names');
  assert.ok(a.tensors.size > 0, `${fileA} holds tensors`);
  let max = 0;
  for (const [name, tensor] of a.tensors) {
    const other = b.tensors.get(name);
    assert.deepEqual(other.shape, tensor.shape, `${name}: shapes`);
    max = Math.max(max, maxAbsDiff(tensor.data, other.data));
  }
  return max;
}

/** Debian's python3-torch is the reference; the pyenv python on PATH has no torch. */
export const referencePython = process.env.VIDEO_RNN_REFERENCE_PYTHON || '/usr/bin/python3';

/** A float32 file as a Float32Array (copied: small Buffers share a pooled ArrayBuffer). */
export function readFloat32(file) {
  const bytes = fs.readFileSync(file);
  return new Float32Array(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength));
}
