import { addon, blasCoreType } from './native';
import { ffmpegPath } from './video';

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
}

/** What this process runs on: the LibTorch linked, CUDA, intra-op threads, and the ffmpeg chosen. */
export function backendInfo(): BackendInfo {
  const { openblasCore, mkl, ...native } = addon().backendInfo();
  return { ...native, ffmpeg: ffmpegPath(), blas: { threads: 1, requested: blasCoreType(), core: openblasCore, mkl } };
}
