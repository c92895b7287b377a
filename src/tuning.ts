// Performance settings whose defaults were chosen by measurement (bench/README.md, "Levers"), read
// once from VIDEO_RNN_TUNING so that each lever can be switched off and measured again on another
// machine, e.g. VIDEO_RNN_TUNING=hugePages=0,decodeNice=0,chunkFrames=16. Not part of the API.
import { VideoRNNError } from './errors';

export interface Tuning {
  /** CPU tensors of 4 MiB or more in transparent huge pages (native/memory.h). */
  hugePages: boolean;
  /** VGG16's convolutions through oneDNN with weights reordered once (native/prepacked_features.h). */
  prepackedConvolutions: boolean;
  /**
   * Under precision 'bf16' on a CPU with native bf16 (avx512_bf16 or amx_bf16), VGG16's convolutions
   * prepacked in bf16 instead of autocast's per-call path (native/prepacked_features.h). Off, or on
   * a CPU without native bf16, bf16 runs under autocast as before.
   */
  bf16Prepacked: boolean;
  /** Within that path, the convolutions after the first as Winograd F(4x4, 3x3) (native/winograd.h). */
  winogradConvolutions: boolean;
  /** fc6 folded with the average pool where VGG16's last map is under 7x7, frames under 224 px (native/pooled_fc6.h). */
  pooledFc6: boolean;
  /**
   * The Winograd products kernel: 'auto' (the best the CPU has: AVX-512, AVX2, else the baseline),
   * or one forced. Forcing one the CPU lacks fails the model's creation with E_INVALID_ARGUMENT.
   */
  winogradKernel: WinogradKernel;
  /** Scheduling niceness of ffmpeg and ffprobe, 0 to 19: decoding yields the cores to the CNN. */
  decodeNice: number;
  /**
   * ffmpeg's decoder and filter threads; 0 leaves ffmpeg's own choice (a thread per core and more).
   * One: several videos decode at once anyway (decodeConcurrency), and the CNN needs the cores.
   */
  ffmpegThreads: number;
  /** Frames per CNN chunk: bounds activation memory. */
  chunkFrames: number;
  /** ffmpeg and ffprobe started by a small helper process, not by this one (src/video/launcher.ts). */
  launcher: boolean;
  /** Stream facts of MP4/MOV, Matroska/WebM and AVI files from their own index, read here, instead of from ffprobe (src/video/*-index.ts). */
  containerIndex: boolean;
  /**
   * Most videos one ffmpeg process decodes (src/video/group.ts): videos waiting for a process
   * share one, so that each pays a fraction of ffmpeg's start. 1 starts a process per video.
   */
  decodeGroup: number;
}

export type WinogradKernel = 'auto' | 'baseline' | 'avx2' | 'avx512';

const defaults: Tuning = { hugePages: true, prepackedConvolutions: true, bf16Prepacked: true, winogradConvolutions: true, pooledFc6: true, winogradKernel: 'auto', decodeNice: 0, ffmpegThreads: 1, chunkFrames: 32, launcher: true, containerIndex: true, decodeGroup: 8 };
type NumericKey = Exclude<keyof Tuning, 'winogradKernel'>;
const limits: Record<NumericKey, [number, number]> = { hugePages: [0, 1], prepackedConvolutions: [0, 1], bf16Prepacked: [0, 1], winogradConvolutions: [0, 1], pooledFc6: [0, 1], decodeNice: [0, 19], ffmpegThreads: [0, 64], chunkFrames: [1, 1 << 16], launcher: [0, 1], containerIndex: [0, 1], decodeGroup: [1, 64] };
// Settings that take one of a few names instead of a number.
const choices: { winogradKernel: readonly WinogradKernel[] } = { winogradKernel: ['auto', 'baseline', 'avx2', 'avx512'] };

function invalid(item: string): VideoRNNError {
  return new VideoRNNError('E_INVALID_ARGUMENT', `VIDEO_RNN_TUNING: "${item}" is not one of ` +
    `${Object.entries(limits).map(([name, [low, high]]) => `${name}=${low}..${high}`).join(', ')}, ` +
    `${Object.entries(choices).map(([name, names]) => `${name}=${names.join('|')}`).join(', ')}`);
}

function parse(text: string | undefined): Tuning {
  const tuning = { ...defaults };
  for (const item of (text ?? '').split(',').map((part) => part.trim()).filter(Boolean)) {
    const [key, value] = item.split('=');
    if (key in choices) {
      const allowed = choices[key as keyof typeof choices];
      if (!(allowed as readonly string[]).includes(value)) throw invalid(item);
      (tuning as Record<string, unknown>)[key] = value;
      continue;
    }
    const number = Number(value);
    if (!(key in limits) || !Number.isInteger(number) || number < limits[key as NumericKey][0] || number > limits[key as NumericKey][1]) {
      throw invalid(item);
    }
    (tuning as unknown as Record<string, number | boolean>)[key] = typeof defaults[key as keyof Tuning] === 'boolean' ? number === 1 : number;
  }
  return tuning;
}

let current: Tuning | undefined;

export function tuning(): Tuning {
  current ??= parse(process.env.VIDEO_RNN_TUNING);
  return current;
}
