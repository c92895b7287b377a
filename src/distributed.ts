// Data-parallel training across processes on c10d (Gloo on CPU, NCCL on CUDA): options and the
// standard launcher environment (RANK, WORLD_SIZE, MASTER_ADDR, MASTER_PORT, LOCAL_RANK), and the
// per-rank sharding of each epoch.
import { VideoRNNError, checkInteger, checkString, invalidArgument } from './errors';

export interface DistributedOptions {
  rank?: number;
  worldSize?: number;
  masterAddr?: string;
  masterPort?: number;
  backend?: 'gloo' | 'nccl';
  /** How long a rendezvous or a collective may wait for the other ranks (default 60 s). */
  timeoutMs?: number;
  /** Gloo's network interfaces by name, comma-separated (or GLOO_SOCKET_IFNAME); default: the one that routes to masterAddr. */
  iface?: string;
  /** This rank's index on its machine (or LOCAL_RANK; default: rank); NCCL uses cuda:<localRank>. */
  localRank?: number;
  /** Ranks on this machine (or LOCAL_WORLD_SIZE; default: worldSize, one machine). */
  localWorldSize?: number;
}

export interface ResolvedDistributed {
  rank: number;
  worldSize: number;
  localRank: number;
  masterAddr: string;
  masterPort: number;
  backend: 'gloo' | 'nccl';
  timeoutMs: number;
  /** Comma-separated interface names; '' picks the interface that routes to masterAddr. */
  iface: string;
  /** Ranks run on more than one machine. */
  multiNode: boolean;
}

function fromEnvironment(env: NodeJS.ProcessEnv, name: string): number | undefined {
  const value = env[name];
  if (value === undefined || value === '') return undefined;
  const number = Number(value);
  if (!Number.isInteger(number)) throw invalidArgument(`environment variable ${name}`, 'an integer', value);
  return number;
}

function interfaces(value: unknown): string {
  if (value === undefined || value === '') return '';
  if (typeof value !== 'string' || !/^[\w.:@-]+(,[\w.:@-]+)*$/.test(value)) {
    throw invalidArgument('distributed.iface', 'interface names separated by commas (as GLOO_SOCKET_IFNAME)', value);
  }
  return value;
}

/**
 * Explicit options win over the environment. Without either (no option object and no WORLD_SIZE
 * above 1), training is not distributed and this returns undefined.
 */
export function resolveDistributed(options: DistributedOptions | boolean | undefined,
  env: NodeJS.ProcessEnv = process.env): ResolvedDistributed | undefined {
  if (options === false) return undefined;
  const explicit = typeof options === 'object' && options !== null ? options : {};
  if (options !== undefined && options !== true && (typeof options !== 'object' || options === null)) {
    throw invalidArgument('distributed', 'an object { rank, worldSize, masterAddr, masterPort, backend }', options);
  }
  const worldSize = explicit.worldSize ?? fromEnvironment(env, 'WORLD_SIZE');
  if (options === undefined && (worldSize === undefined || worldSize <= 1)) return undefined;
  const size = checkInteger('distributed.worldSize', worldSize ?? 1, 1, 65536);
  const rank = checkInteger('distributed.rank', explicit.rank ?? fromEnvironment(env, 'RANK') ?? 0, 0, size - 1);
  const backend = explicit.backend ?? 'gloo';
  if (backend !== 'gloo' && backend !== 'nccl') throw invalidArgument('distributed.backend', "'gloo' or 'nccl'", backend);
  const localWorldSize = checkInteger('distributed.localWorldSize',
    explicit.localWorldSize ?? fromEnvironment(env, 'LOCAL_WORLD_SIZE') ?? size, 1, size);
  return {
    rank,
    worldSize: size,
    localRank: checkInteger('distributed.localRank', explicit.localRank ?? fromEnvironment(env, 'LOCAL_RANK') ?? rank, 0, size - 1),
    masterAddr: checkString('distributed.masterAddr', explicit.masterAddr ?? env.MASTER_ADDR ?? '127.0.0.1'),
    masterPort: checkInteger('distributed.masterPort', explicit.masterPort ?? fromEnvironment(env, 'MASTER_PORT') ?? 29500, 1, 65535),
    backend,
    timeoutMs: checkInteger('distributed.timeoutMs', explicit.timeoutMs ?? 60000, 1, 2 ** 31),
    iface: interfaces(explicit.iface ?? env.GLOO_SOCKET_IFNAME),
    multiNode: localWorldSize < size,
  };
}

/**
 * In a launched group (WORLD_SIZE above 1 and LOCAL_RANK set, as torchrun and `--nproc` do), 'cuda'
 * and, on a CUDA build, 'auto' mean this rank's own GPU, cuda:LOCAL_RANK; anything else is kept.
 */
export function rankDevice(device: unknown, cudaAvailable: boolean, env: NodeJS.ProcessEnv = process.env): unknown {
  const local = Number(env.LOCAL_RANK);
  if (!env.LOCAL_RANK || !Number.isInteger(local) || local < 0 || !(Number(env.WORLD_SIZE ?? 1) > 1)) return device;
  return device === 'cuda' || ((device ?? 'auto') === 'auto' && cudaAvailable) ? `cuda:${local}` : device;
}

/**
 * This rank's batches of one epoch. Every rank shuffles the same order; the order is padded by
 * wrapping around to a multiple of worldSize (as PyTorch's DistributedSampler does), cut into global
 * batches of batchSize x worldSize, and each global batch is split evenly across ranks. So every
 * rank runs the same number of steps with equally sized batches, and the averaged gradient of a
 * step equals the gradient of the whole global batch.
 */
export function shardBatches(order: readonly number[], batchSize: number, rank: number, worldSize: number): number[][] {
  const padded = [...order];
  for (let index = 0; padded.length % worldSize !== 0; index += 1) padded.push(order[index % order.length]);
  const batches: number[][] = [];
  const global = batchSize * worldSize;
  for (let start = 0; start < padded.length; start += global) {
    const batch = padded.slice(start, start + global);
    const share = batch.length / worldSize;
    batches.push(batch.slice(rank * share, (rank + 1) * share));
  }
  return batches;
}

/** Evaluation shards by stride, without padding: every sample is counted exactly once. */
export function shardIndices(size: number, rank: number, worldSize: number): number[] {
  const indices: number[] = [];
  for (let index = rank; index < size; index += worldSize) indices.push(index);
  return indices;
}

const peerFailure = /gloo|nccl|connection|peer|timed? ?out|socket|store|rendezvous/i;

/** A collective or rendezvous failure as E_DISTRIBUTED; other errors pass through. */
export function distributedError(error: unknown, group: ResolvedDistributed): unknown {
  if (!(error instanceof VideoRNNError) || error.code !== 'E_NATIVE' || !peerFailure.test(error.message)) return error;
  return new VideoRNNError('E_DISTRIBUTED',
    `rank ${group.rank} of ${group.worldSize} (${group.backend}, ${group.masterAddr}:${group.masterPort}): ${error.message}`, { cause: error });
}
