// Options several commands share, declared once so they read the same everywhere.
import { Command, Option } from 'commander';
import { addon } from '../native';
import { type Device, type Precision, resolveBackend } from '../options';
import * as parse from './arguments';

export function addDeviceOption(command: Command): Command {
  return command.option('--device <device>', 'auto, cpu, cuda or cuda:N', parse.device, 'auto');
}

export function addPrecisionOption(command: Command): Command {
  return command.addOption(new Option('--precision <p>', "auto (bf16 on CUDA, fp32 on the CPU), fp32, bf16 (autocast) or fp16 (CUDA only)")
    .argParser(parse.precision).default('auto'));
}

/** Refuses a device or precision this build cannot run (fp16 on the CPU) before workers are started for it. */
export function checkBackend(device: Device, precision: Precision): void {
  const { cuda, cudaDevices } = addon().backendInfo();
  resolveBackend(device, precision, { available: cuda, devices: cudaDevices });
}

/**
 * The precision a model already on `device` (model.device) computes in, for the command's output.
 * bf16 on a CPU without native bfloat16 works, much slower than fp32: the library warns when the
 * model is created or loaded (VIDEO_RNN_BF16_EMULATED), not an error.
 */
export function precisionInUse(device: string, wanted: Precision): 'fp32' | 'bf16' | 'fp16' {
  return resolveBackend(device, wanted, { available: true, devices: Infinity }).precision;
}

/** Where a small checkpoint's backbone comes from, for every command that loads a model. */
export function addBackboneOption(command: Command): Command {
  return command.option('--backbone <file>',
    'VGG16 weights that a small checkpoint references (default: the file it names, in its folder or in VIDEO_RNN_BACKBONE_PATH)');
}

export function addOutputOptions(command: Command): Command {
  return command
    .option('--json', 'print one JSON object on stdout instead of text', false)
    .option('-q, --quiet', 'no progress on stderr', false);
}

/** Epochs, batches, optimiser, validation, checkpoints and the report: the same for train and fine-tune. */
export function addTrainingOptions(command: Command, defaults: { epochs: number; lr: number }): Command {
  return command
    .requiredOption('-o, --output <file>', 'where to save the trained model (.safetensors)')
    .option('--epochs <n>', 'passes over the training set', parse.positiveInteger, defaults.epochs)
    .option('--batch-size <n>', 'clips per optimiser step', parse.positiveInteger, 8)
    .option('--lr <rate>', 'learning rate of the LSTM and head', parse.positiveNumber, defaults.lr)
    .addOption(new Option('--optimizer <name>', 'adam or sgd').argParser(parse.optimizer).default('adam'))
    .option('--momentum <value>', 'SGD momentum, as torch.optim.SGD (default 0.9; sgd only)', parse.nonNegativeNumber)
    .option('--weight-decay <value>', 'L2 weight decay', parse.nonNegativeNumber, 0)
    .option('--val <fraction|dataset>', 'validate after each epoch on this fraction of the data (e.g. 0.2) or on another dataset', parse.validation)
    .option('--root <dir>', "folder that a manifest's relative paths start from (default: the manifest's folder)")
    .option('--seed <n>', 'seed for initialisation, shuffling and the validation split', parse.nonNegativeInteger, 0)
    .option('--checkpoint-every <n>', 'also save the model to --output every N epochs, with its training state in <output>.state', parse.positiveInteger)
    .option('--embed-backbone', 'save self-contained files, with the whole backbone (default: a model built from --weights saves the trained tensors and references the weights)', false)
    .option('--resume <checkpoint>', 'continue the run that saved this checkpoint (and <checkpoint>.state): its weights, optimiser state, epoch and settings')
    .option('--report <file.html>', 'write an HTML report: loss and accuracy curves, confusion matrix', parse.reportFile);
}

/** Threads, and data-parallel training: local workers (--nproc) or one rank of a group started elsewhere. */
export function addParallelOptions(command: Command, work: 'train' | 'extract' = 'train'): Command {
  return command
    .option('--threads <n>', 'intra-op threads (default: all cores; with --nproc, the cores divided among the workers)', parse.positiveInteger)
    .option('--nproc <n>', work === 'train' ? 'train data-parallel in N local worker processes (global batch: N x --batch-size)'
      : 'extract data-parallel in N local worker processes, each on its own shard of the dataset', parse.positiveInteger)
    .option('--nnodes <n>', 'machines taking part, each started with the same command and --nproc', parse.positiveInteger, 1)
    .option('--node-rank <r>', 'index of this machine among --nnodes (0 hosts the rendezvous)', parse.nonNegativeInteger, 0)
    .option('--rank <r>', 'this process is rank R of a group started elsewhere (or set RANK)', parse.nonNegativeInteger)
    .option('--world-size <n>', 'processes in that group (or set WORLD_SIZE)', parse.positiveInteger)
    .option('--master-addr <host>', 'address of rank 0 for the rendezvous (or MASTER_ADDR; default 127.0.0.1)')
    .option('--master-port <port>', 'port of the rendezvous (or MASTER_PORT; default 29500, or a free one with --nproc)',
      parse.integerBetween(1, 65535))
    .addOption(new Option('--dist-backend <name>', 'gloo (CPU) or nccl (CUDA)').argParser(parse.distributedBackend))
    .option('--iface <names>', "network interfaces for Gloo, comma-separated (or GLOO_SOCKET_IFNAME; default: the one that routes to --master-addr)")
    .option('--dist-timeout <seconds>', 'how long the rendezvous and each collective wait for the other ranks', parse.positiveNumber, 60);
}
