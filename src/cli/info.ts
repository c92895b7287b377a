// `video-rnn info`: what this installation runs on.
import { Command } from 'commander';
import os from 'node:os';
import { backendInfo } from '../backend';
import { addonPath } from '../native';
import { printJson } from './format';
import { packageVersion } from './package-info';

export function registerInfo(program: Command): void {
  program.command('info')
    .description('LibTorch version, CUDA devices, threads, ffmpeg and the native addon in use')
    .option('--json', 'print one JSON object on stdout instead of text', false)
    .action((flags: { json: boolean }) => {
      const backend = backendInfo();
      const info = {
        version: packageVersion(),
        node: process.version,
        platform: `${process.platform}-${process.arch}`,
        cpus: os.availableParallelism(),
        ...backend,
        addon: addonPath() ?? null,
      };
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
        ['openblas', info.blas.core ? `${info.blas.core} kernels, ${info.blas.threads} thread` : info.blas.mkl ? 'not in use (LibTorch runs its own MKL)' : 'not in use'],
        ['ffmpeg', info.ffmpeg ?? 'not found (install ffmpeg or set FFMPEG_PATH)'],
        ['addon', info.addon ?? 'not built'],
      ];
      process.stdout.write(lines.map(([name, value]) => `${`${name}:`.padEnd(11)}${value}`).join('\n') + '\n');
    });
}
