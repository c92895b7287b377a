// `--features DIR` and its two settings, the same on every command that embeds clips (extract, train,
// fine-tune, evaluate, predict): where fc7 embeddings persist between processes and machines.
import { Command, CommanderError, InvalidArgumentError, Option } from 'commander';
import type { FeatureDtype, FeatureStoreOption } from '../features/types';
import type { ModelStats } from '../model';
import * as parse from './arguments';

export interface FeatureStoreFlags {
  features?: string;
  featuresMaxGb?: number;
  featuresDtype?: FeatureDtype;
}

// --features-max-gb counts binary gigabytes, as the sizes the command line prints do.
const GB = 2 ** 30;

function featureDtype(text: string): FeatureDtype {
  if (text !== 'float32' && text !== 'bf16' && text !== 'fp16') throw new InvalidArgumentError('Expected float32, bf16 or fp16.');
  return text;
}

export function addFeatureStoreOptions(command: Command, required = false): Command {
  const description = 'feature store folder: fc7 embeddings found there are read instead of decoding and running VGG16, ' +
    'and the missing ones are written (made on first use; several processes and machines may share it)';
  if (required) command.requiredOption('--features <dir>', description);
  else command.option('--features <dir>', description);
  return command
    .option('--features-max-gb <n>', 'size bound of the store in GB (2^30 bytes); past it the least recently used entries are evicted (default: none)',
      parse.positiveNumber)
    .addOption(new Option('--features-dtype <type>', 'how new entries are stored: float32 (default), or bf16 or fp16 at half the size; fixed when the store is made')
      .argParser(featureDtype));
}

/** The library's featureStore option, or undefined without --features (whose settings alone are a usage error). */
export function featureStoreFrom(flags: FeatureStoreFlags): FeatureStoreOption | undefined {
  if (flags.features === undefined) {
    if (flags.featuresMaxGb !== undefined || flags.featuresDtype !== undefined) {
      throw new CommanderError(2, 'commander.usage', '--features-max-gb and --features-dtype need --features DIR');
    }
    return undefined;
  }
  if (flags.featuresMaxGb === undefined && flags.featuresDtype === undefined) return flags.features;
  return {
    path: flags.features,
    ...(flags.featuresMaxGb !== undefined ? { maxBytes: Math.round(flags.featuresMaxGb * GB) } : {}),
    ...(flags.featuresDtype !== undefined ? { dtype: flags.featuresDtype } : {}),
  };
}

/** What a run took from the store and gave it, for --json output and the summary line. */
export function featureStoreUse(store: FeatureStoreOption | undefined, stats: ModelStats):
  { path: string; hits: number; misses: number; writes: number } | undefined {
  if (store === undefined) return undefined;
  return { path: typeof store === 'string' ? store : store.path, hits: stats.featureStoreHits, misses: stats.featureStoreMisses,
    writes: stats.featureStoreWrites };
}

export function featureStoreText(use: NonNullable<ReturnType<typeof featureStoreUse>>): string {
  return `feature store ${use.path}: ${use.hits} clips read, ${use.misses} computed, ${use.writes} written`;
}
