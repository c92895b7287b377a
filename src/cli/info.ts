// `video-rnn info`: what this installation runs on.
import { Command } from 'commander';
import os from 'node:os';
import { BF16_EMULATED_WARNING, CpuBf16, backendInfo } from '../backend';
import { inspectCheckpoint } from '../checkpoint-info';
import { addonPath } from '../native';
import { bytes, printJson } from './format';
import { packageVersion } from './package-info';

/** The text line for bf16 on the CPU. */
function bf16Text(bf16: CpuBf16): string {
  if (bf16.native) return `native (${bf16.features.join(', ')})`;
  if (bf16.native === false) return 'no (bf16 runs emulated, converting to and from fp32: slower than fp32)';
  return 'unknown (read from /proc/cpuinfo on x86-64 Linux only)';
}

/** What `info` warns about: with --json these are in `warnings` as well as on stderr. */
function warningsOf(bf16: CpuBf16): string[] {
  return bf16.native === false ? [BF16_EMULATED_WARNING] : [];
}

async function describeModel(path: string, json: boolean): Promise<void> {
  const info = await inspectCheckpoint(path);
  if (json) {
    printJson(info);
    return;
  }
  const { backbone } = info;
  const source = backbone.hint === null ? 'random initialisation or unknown' : `${backbone.naming}-named weights from a file named ${backbone.hint}`;
  const lines = [
    ['model', `${info.path} (${bytes(info.bytes)}, version ${info.version})`],
    ['classes', info.config.classes.join(', ')],
    ['backbone', `${backbone.identity}${backbone.identityFrom === 'computed' ? ' (of the weights the file holds)' : ''}`],
    ['weights', source],
    ['contained', info.selfContained ? 'yes: self-contained, the whole backbone is in the file'
      : 'no: the file references the backbone by identity and holds only the trained tensors'],
    ['trained', backbone.trainedTensors.length === 0 ? 'no backbone tensors' : `${backbone.trainedTensors.length} backbone tensors (${backbone.trainedTensors.join(', ')})`],
  ];
  process.stdout.write(lines.map(([name, value]) => `${`${name}:`.padEnd(11)}${value}`).join('\n') + '\n');
}

export function registerInfo(program: Command): void {
  program.command('info')
    .description('LibTorch version, CUDA devices, threads, bf16 on the CPU, ffmpeg and the native addon in use; ' +
      'with a model file: its backbone identity and whether the file is self-contained')
    .argument('[model]', 'a saved model (.safetensors) to describe instead')
    .option('--json', 'print one JSON object on stdout instead of text', false)
    .action(async (model: string | undefined, flags: { json: boolean }) => {
      if (model !== undefined) {
        await describeModel(model, flags.json);
        return;
      }
      const backend = backendInfo();
      const info = {
        version: packageVersion(),
        node: process.version,
        platform: `${process.platform}-${process.arch}`,
        cpus: os.availableParallelism(),
        ...backend,
        addon: addonPath() ?? null,
        warnings: warningsOf(backend.cpuBf16),
      };
      for (const warning of info.warnings) process.stderr.write(`video-rnn: warning: ${warning}\n`);
      if (flags.json) {
        printJson(info);
        return;
      }
      const lines = [
        ['video-rnn', info.version],
        ['node', `${info.node} (${info.platform})`],
        ['libtorch', `${info.torchVersion} (${info.cxx11Abi ? 'C++11' : 'pre-C++11'} libstdc++ ABI)`],
        ['cuda', info.cuda ? `yes, ${info.cudaDevices} device${info.cudaDevices === 1 ? '' : 's'}` : 'no'],
        ['threads', `${info.threads} (of ${info.cpus} CPUs)`],
        ['cpu bf16', bf16Text(info.cpuBf16)],
        ['openblas', info.blas.core ? `${info.blas.core} kernels, ${info.blas.threads} thread` : info.blas.mkl ? 'not in use (LibTorch runs its own MKL)' : 'not in use'],
        ['ffmpeg', info.ffmpeg ?? 'not found (install ffmpeg or set FFMPEG_PATH)'],
        ['addon', info.addon ?? 'not built'],
      ];
      process.stdout.write(lines.map(([name, value]) => `${`${name}:`.padEnd(11)}${value}`).join('\n') + '\n');
    });
}
