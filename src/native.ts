// The one file that loads the addon and declares its typed surface. Everything else in src/
// talks to this declaration, never to the .node file.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { ErrorCode, VideoRNNError } from './errors';

export interface NativeConfig {
  classes: number;
  hiddenSize?: number;
  numLayers?: number;
  bidirectional?: boolean;
  headSize?: number;
  dropout?: number;
  device?: string;
  precision?: 'fp32' | 'bf16' | 'fp16';
  seed?: number;
  threads?: number;
  chunkFrames?: number;
  cacheBytes?: number;
  channelsLast?: boolean;
  hugePages?: boolean;
  prepackedConvolutions?: boolean;
  /** Under bf16 autocast on the CPU, the convolutions prepacked in bf16 (native/prepacked_features.h). */
  bf16PrepackedConvolutions?: boolean;
  winogradConvolutions?: boolean;
  /** fc6 folded with the average pool where the last map is under 7x7 (native/pooled_fc6.h). */
  pooledFc6?: boolean;
  /** The Winograd products kernel: the best this CPU has ('auto'), or one forced (native/winograd.h). */
  winogradKernel?: 'auto' | 'baseline' | 'avx2' | 'avx512';
}

/** One clip of a batch: RGB24 frames, its fc7 rows, or only a cache key whose embeddings are cached. */
export interface NativeClip {
  data?: Uint8Array;
  /** fc7 rows computed before (frames x 4096, float32): the CNN does not run for this clip. */
  embeddings?: Float32Array;
  frames?: number;
  height?: number;
  width?: number;
  cacheKey?: string;
  store?: boolean;
}

export interface NativeBatchResult {
  probabilities: Float32Array; // [clips, classes], row-major, caller's order
  classes: number;
  loss: number;
  stepped: boolean;
}

export interface NativeTensor {
  name: string;
  shape: number[];
  data: Float32Array;
}

/** Adam's moments or SGD's momentum per parameter, step counts, and torch's CPU generator as bytes. */
export interface NativeOptimizerState {
  tensors: NativeTensor[];
  steps: Record<string, number>;
  generator: Float32Array;
}

export interface NativeTrainSettings {
  optimizer?: 'adam' | 'sgd';
  learningRate?: number;
  backboneLearningRate?: number;
  weightDecay?: number;
  momentum?: number;
  trainableBackboneLayers?: number;
}

export interface NativeCounters {
  framesEmbedded: number;
  cacheHits: number;
  cacheEntries: number;
  cacheBytes: number;
  /** Milliseconds of wall time per native phase, summed over the engine's calls (native/phase_times.h). */
  phaseMs: { normalize: number; convolutions: number; classifier: number; sequence: number; optimizer: number; call: number };
  calls: number;
  /** Convolution layers run per path, one per layer per forward (native/prepacked_features.h). */
  convolutions: ConvolutionCounts;
  /** Forwards whose fc6 ran folded with the average pool (native/pooled_fc6.h). */
  pooledFc6: number;
}

/** Convolution layers run per path: Winograd per products kernel, oneDNN prepacked, LibTorch's dense path. */
export interface ConvolutionCounts {
  winogradAvx512: number;
  winogradAvx2: number;
  winogradBaseline: number;
  onednn: number;
  /** oneDNN with bf16 weights prepacked, under precision 'bf16' on a CPU with native bf16. */
  onednnBf16: number;
  dense: number;
}

export interface NativeModel {
  predict(clips: NativeClip[]): Promise<NativeBatchResult>;
  evaluate(clips: NativeClip[], labels: number[]): Promise<NativeBatchResult>;
  trainStep(clips: NativeClip[], labels: number[]): Promise<NativeBatchResult>;
  embed(clips: NativeClip[]): Promise<Float32Array[]>;
  configureTraining(settings: NativeTrainSettings): Promise<void>;
  /** Float32 copies of the parameters, in the model's order; those named in `skip` are left out (not copied). */
  getState(skip?: string[]): Promise<NativeTensor[]>;
  shapes(): { name: string; shape: number[] }[];
  loadState(tensors: NativeTensor[], prefix: string, requireAll: boolean): Promise<void>;
  /** Reads the ranges from the open descriptor `fd` of the file `path` into the model (native/tensor_file.h). */
  loadStateFile(fd: number, path: string, ranges: { name: string; shape: number[]; dtype: string; offset: number; bytes: number }[],
    prefix: string, requireAll: boolean): Promise<void>;
  fingerprint(): Promise<string>;
  isCached(key: string): boolean;
  clearCache(): void;
  counters(): NativeCounters;
  dispose(): void;
  joinGroup(config: { rank: number; worldSize: number; masterAddr: string; masterPort: number; backend: string; timeoutMs: number;
    iface: string; multiNode: boolean }): Promise<void>;
  sumOverRanks(values: number[]): Promise<number[]>;
  getOptimizerState(): Promise<NativeOptimizerState>;
  loadOptimizerState(state: NativeOptimizerState): Promise<void>;
}

export interface NativeBackendInfo {
  torchVersion: string;
  /** Whether LibTorch and the addon use libstdc++'s C++11 ABI (_GLIBCXX_USE_CXX11_ABI=1). */
  cxx11Abi: boolean;
  cuda: boolean;
  cudaDevices: number;
  threads: number;
  /** The kernel family the loaded OpenBLAS runs (openblas_get_corename), null when BLAS is not OpenBLAS. */
  openblasCore: string | null;
  /** Whether LibTorch was built with MKL (LibTorch zips, pip wheels), which then runs its GEMMs. */
  mkl: boolean;
  /** The Winograd products kernels this CPU can run, the default first ('avx512', 'avx2', 'baseline'). */
  winogradKernels: string[];
}

interface Addon {
  createModel(config: NativeConfig): Promise<NativeModel>;
  backendInfo(): NativeBackendInfo;
  /** How LibTorch was built (at::show_config(), as torch.__config__.show() in Python). */
  buildConfig(): string;
  /** Test suite only: a native worker that throws `message` ('c10': a c10::Error, 'std': a std::runtime_error). */
  failInWorkerForTesting(kind: 'c10' | 'std', message: string): Promise<void>;
  /** Test suite only: the bytes of external memory V8 has been told about (napi_adjust_external_memory). */
  externalMemoryForTesting(): number;
  /**
   * Test suite only: relu(conv3x3 + bias) of seeded normal data through one Winograd kernel and
   * through LibTorch's dense convolution, both NCHW [batch, out, height, width].
   */
  winogradForTesting(args: { kernel: string; threads: number; batch: number; in: number; out: number; height: number; width: number; seed: number }): { winograd: Float32Array; dense: Float32Array };
}

const packageRoot = path.resolve(__dirname, '..');

/** Where the addon may be: an explicit path, the cmake-js build, then the node-gyp build. */
export function addonCandidates(): string[] {
  const candidates = [
    path.join(packageRoot, 'build-cmake', 'Release', 'video_rnn.node'),
    path.join(packageRoot, 'build', 'Release', 'video_rnn.node'),
  ];
  return process.env.VIDEO_RNN_ADDON ? [path.resolve(process.env.VIDEO_RNN_ADDON)] : candidates;
}

let loaded: Addon | undefined;

/**
 * OpenBLAS's pthread build joins its worker threads in a fork handler; a fork (every ffmpeg spawn)
 * that lands while a BLAS call runs on a libuv thread then deadlocks the process. With one BLAS
 * thread there is no pool to join. The native code splits the large GEMMs across LibTorch's own
 * intra-op threads instead, so nothing is lost. Must be set before the addon loads OpenBLAS.
 */
function configureBlasThreads(): void {
  if (process.env.OPENBLAS_NUM_THREADS !== '1') {
    if (process.env.OPENBLAS_NUM_THREADS !== undefined) {
      process.emitWarning(`video-rnn sets OPENBLAS_NUM_THREADS=1 (was ${process.env.OPENBLAS_NUM_THREADS}): ` +
        "OpenBLAS's thread pool deadlocks when ffmpeg is spawned during a BLAS call", { code: 'VIDEO_RNN_BLAS_THREADS' });
    }
    process.env.OPENBLAS_NUM_THREADS = '1';
  }
}

/**
 * OpenBLAS 0.3.21 (Debian 12) names its kernels from the CPU's family and model. On models it does not
 * know (recent or virtualised Xeons report a generic name) it falls back to its oldest x86-64 kernels
 * (Prescott), which run the fc6/fc7 GEMMs at about half speed. The instruction-set flags are reliable,
 * so the kernel family is named from them, unless the user set OPENBLAS_CORETYPE. Measured in
 * bench/README.md.
 */
export function blasCoreFor(cpuFlags: ReadonlySet<string>): string | null {
  const has = (...names: string[]) => names.every((name) => cpuFlags.has(name));
  if (has('avx512f', 'avx512bw', 'avx512vl', 'avx512dq', 'avx512cd')) return 'SkylakeX';
  if (has('avx2', 'fma')) return 'Haswell';
  return null;
}

function cpuFlags(): Set<string> {
  try {
    const line = fs.readFileSync('/proc/cpuinfo', 'utf8').split('\n').find((text) => text.startsWith('flags'));
    return new Set(line ? line.slice(line.indexOf(':') + 1).trim().split(/\s+/) : []);
  } catch {
    return new Set();
  }
}

let blasCore: string | null = null;

function configureBlasCore(): void {
  if (process.env.OPENBLAS_CORETYPE !== undefined) {
    blasCore = process.env.OPENBLAS_CORETYPE || null;
    return;
  }
  if (process.platform !== 'linux' || process.arch !== 'x64') return;
  blasCore = blasCoreFor(cpuFlags());
  if (blasCore) process.env.OPENBLAS_CORETYPE = blasCore;
}

/** The OpenBLAS kernel family requested (null: OpenBLAS's own detection). */
export function blasCoreType(): string | null {
  return blasCore;
}

export function addon(): Addon {
  if (loaded) return loaded;
  const found = addonCandidates().find((candidate) => fs.existsSync(candidate));
  if (!found) {
    throw new VideoRNNError('E_NATIVE',
      `The video-rnn native addon is not built (looked for ${addonCandidates().join(', ')}). ` +
      'Run `npm rebuild video-rnn` (or `npm run build:native` in the repository); it needs LibTorch.');
  }
  configureBlasThreads();
  configureBlasCore();
  try {
    loaded = require(found) as Addon;
  } catch (error) {
    throw new VideoRNNError('E_NATIVE', `Could not load the native addon ${found}: ${(error as Error).message}`, { cause: error });
  }
  return loaded;
}

/** The path of the addon that was loaded, for diagnostics. */
export function addonPath(): string | undefined {
  return addonCandidates().find((candidate) => fs.existsSync(candidate));
}

const nativeCodes = new Set<string>(['E_INVALID_ARGUMENT', 'E_DISPOSED', 'E_NATIVE']);

/** A native failure as a VideoRNNError, keeping the caller's stack rather than the native one. */
export function fromNative(error: unknown, callerStack?: string): VideoRNNError {
  if (error instanceof VideoRNNError) return error;
  const raw = error as { code?: string; message?: string };
  const code = (raw?.code && nativeCodes.has(raw.code) ? raw.code : 'E_NATIVE') as ErrorCode;
  const converted = new VideoRNNError(code, raw?.message ?? String(error), { cause: error });
  if (callerStack) converted.stack = `${converted.name}: ${converted.message}\n${callerStack.split('\n').slice(1).join('\n')}`;
  return converted;
}

/** Runs a native call, turning synchronous throws and rejections alike into VideoRNNErrors. */
export async function callNative<T>(run: () => Promise<T> | T): Promise<T> {
  const callerStack = new Error().stack;
  try {
    return await run();
  } catch (error) {
    throw fromNative(error, callerStack);
  }
}
