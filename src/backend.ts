import fs from 'node:fs';
import { addon, blasCoreType } from './native';
import { ffmpegPath } from './video';

/**
 * Whether this CPU computes bfloat16 natively. `native`: true when /proc/cpuinfo lists one of
 * `features` (avx512_bf16, amx_bf16: the instructions oneDNN's bf16 kernels use), false on x86-64
 * Linux without them (bf16 then runs emulated in fp32 kernels, slower than fp32 itself), null where
 * it is not known (other systems and architectures). `features`: those found.
 */
export interface CpuBf16 {
  native: boolean | null;
  features: string[];
}

/** The warning for bf16 on a CPU without it, from the library (create/load) and from `info`. */
export const BF16_EMULATED_WARNING = 'this CPU has no native bf16 (neither avx512_bf16 nor amx_bf16): bf16 runs through ' +
  "LibTorch's generic kernels instead of oneDNN's, many times slower than fp32 (bench/README.md measures it)";

/** The CPU flags that give native bfloat16, in the order they appeared on x86. */
const BF16_CPU_FLAGS = ['avx512_bf16', 'amx_bf16'];

export interface BackendInfo {
  torchVersion: string;
  /** Whether LibTorch and the addon use libstdc++'s C++11 ABI (_GLIBCXX_USE_CXX11_ABI=1). */
  cxx11Abi: boolean;
  cuda: boolean;
  cudaDevices: number;
  threads: number;
  ffmpeg: string | null;
  /**
   * OpenBLAS: one thread (see src/native.ts), the kernel family requested (null: OpenBLAS's own
   * detection) and the one it runs (null when the BLAS is not OpenBLAS). `mkl`: LibTorch was built
   * with MKL (LibTorch zips, pip wheels) and runs its GEMMs there; the one intended case without OpenBLAS.
   */
  blas: { threads: number; requested: string | null; core: string | null; mkl: boolean };
  cpuBf16: CpuBf16;
  /** The Winograd convolution kernels this CPU can run, the default first: 'avx512', 'avx2', 'baseline'. */
  winogradKernels: string[];
}

let cpuBf16Found: CpuBf16 | undefined;

/** Reads the flags of the first processor in /proc/cpuinfo (all cores of a machine share them). */
function readCpuBf16(): CpuBf16 {
  if (process.platform !== 'linux' || process.arch !== 'x64') return { native: null, features: [] };
  let text: string;
  try {
    text = fs.readFileSync('/proc/cpuinfo', 'utf8');
  } catch {
    return { native: null, features: [] };
  }
  const line = /^flags\s*:(.*)$/m.exec(text);
  if (!line) return { native: null, features: [] };
  const flags = new Set(line[1].trim().split(/\s+/));
  const features = BF16_CPU_FLAGS.filter((flag) => flags.has(flag));
  return { native: features.length > 0, features };
}

/** Whether this CPU has native bfloat16; read once per process. */
export function cpuBf16(): CpuBf16 {
  cpuBf16Found ??= readCpuBf16();
  return { native: cpuBf16Found.native, features: [...cpuBf16Found.features] };
}

/** What this process runs on: the LibTorch linked, CUDA, intra-op threads, the ffmpeg chosen, and bf16 on the CPU. */
export function backendInfo(): BackendInfo {
  const { openblasCore, mkl, ...native } = addon().backendInfo();
  return { ...native, ffmpeg: ffmpegPath(), blas: { threads: 1, requested: blasCoreType(), core: openblasCore, mkl }, cpuBf16: cpuBf16() };
}
