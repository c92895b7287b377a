import { addon } from './native';
import { ffmpegPath } from './video';

export interface BackendInfo {
  torchVersion: string;
  cuda: boolean;
  cudaDevices: number;
  threads: number;
  ffmpeg: string | null;
}

/** What this process runs on: the LibTorch linked, CUDA, intra-op threads, and the ffmpeg chosen. */
export function backendInfo(): BackendInfo {
  const native = addon().backendInfo();
  return { ...native, ffmpeg: ffmpegPath() };
}
