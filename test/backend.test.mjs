// The BLAS settings the library makes before LibTorch loads OpenBLAS: one BLAS thread, and the kernel
// family named from the CPU's instruction-set flags (OpenBLAS 0.3.21 falls back to its slowest kernels
// on CPU models it does not know). A user's OPENBLAS_CORETYPE always wins.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import { backendInfo } from '../dist/index.js';
import { blasCoreFor } from '../dist/native.js';

const infoIn = (env) => JSON.parse(execFileSync(process.execPath,
  ['-e', "process.stdout.write(JSON.stringify(require('./dist/index.js').backendInfo()))"],
  { env: { ...process.env, ...env }, encoding: 'utf8' }));

test('the kernel family follows the instruction-set flags', () => {
  const avx512 = ['avx512f', 'avx512bw', 'avx512vl', 'avx512dq', 'avx512cd', 'avx2', 'fma'];
  assert.equal(blasCoreFor(new Set(avx512)), 'SkylakeX');
  assert.equal(blasCoreFor(new Set(['avx2', 'fma', 'avx512f'])), 'Haswell', 'AVX-512F alone is not enough for SkylakeX kernels');
  assert.equal(blasCoreFor(new Set(['avx2'])), null, 'AVX2 without FMA keeps OpenBLAS detection');
  assert.equal(blasCoreFor(new Set(['sse2', 'sse4_2'])), null);
});

// Without OpenBLAS the fc6/fc7 GEMMs run on Debian's reference BLAS, about 10x slower (README). The
// one intended exception is a LibTorch built with MKL (LibTorch zips, pip wheels): it bundles its BLAS.
function openblasOrIntendedFallback(t, blas) {
  if (blas.core !== null) return true;
  assert.ok(blas.mkl, 'LibTorch runs neither on OpenBLAS nor on a bundled MKL: install libopenblas0-pthread (README)');
  t.skip('this LibTorch runs its GEMMs on the MKL it bundles; the OpenBLAS settings do not apply');
  return false;
}

test('LibTorch runs its GEMMs on OpenBLAS, or on the MKL its own build bundles', () => {
  const { blas } = backendInfo();
  assert.ok(blas.core !== null || blas.mkl, `blas: ${JSON.stringify(blas)}`);
});

test('the OpenBLAS LibTorch loaded runs the family that was requested', (t) => {
  const { blas } = infoIn({ OPENBLAS_CORETYPE: undefined });
  if (!openblasOrIntendedFallback(t, blas)) return;
  assert.equal(blas.threads, 1);
  const flags = fs.readFileSync('/proc/cpuinfo', 'utf8').split('\n').find((line) => line.startsWith('flags')) ?? '';
  const expected = blasCoreFor(new Set(flags.split(':')[1]?.trim().split(/\s+/) ?? []));
  assert.equal(blas.requested, expected);
  if (expected) assert.equal(blas.core.toLowerCase(), expected.toLowerCase());
});

test("a user's OPENBLAS_CORETYPE is kept", (t) => {
  if (!openblasOrIntendedFallback(t, backendInfo().blas)) return;
  const { blas } = infoIn({ OPENBLAS_CORETYPE: 'Prescott' });
  assert.deepEqual({ threads: blas.threads, requested: blas.requested, core: blas.core }, { threads: 1, requested: 'Prescott', core: 'Prescott' });
});
