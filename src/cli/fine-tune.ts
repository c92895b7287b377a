// `video-rnn fine-tune <model> <dataset> --unfreeze N -o out.safetensors`: trains a saved model further
// with the top N VGG16 weight layers unfrozen at their own learning rate.
import { Command } from 'commander';
import { MAX_TRAINABLE_BACKBONE_LAYERS } from '../constants';
import { VideoRNN } from '../model';
import type { Device } from '../options';
import * as parse from './arguments';
import { addBackboneOption, addDeviceOption, addOutputOptions, addParallelOptions, addPrecisionOption, addTrainingOptions, checkBackend } from './common';
import { WorkersExited, launchWorkers, launches, workerDevice } from './launch';
import { openTrainingData } from './datasets';
import { addFeatureStoreOptions, featureStoreFrom } from './feature-store';
import { TrainingFlags, runTrainingCommand } from './training-run';

interface FineTuneFlags extends TrainingFlags {
  unfreeze: number;
  backboneLr?: number;
  device: Device;
  root?: string;
}

export function registerFineTune(program: Command): void {
  const command = program.command('fine-tune')
    .description('train a saved model further, with the top VGG16 layers unfrozen')
    .argument('<model>', 'a model saved by train (.safetensors)')
    .argument('<dataset>', 'dataset folder or manifest, with the classes of the model')
    .requiredOption('--unfreeze <n>', `VGG16 weight layers to train, counted from the top (1-${MAX_TRAINABLE_BACKBONE_LAYERS})`,
      parse.integerBetween(1, MAX_TRAINABLE_BACKBONE_LAYERS));
  addTrainingOptions(command, { epochs: 5, lr: 1e-4 })
    .option('--backbone-lr <rate>', 'learning rate of the unfrozen VGG16 layers (default: --lr / 10)', parse.positiveNumber);
  addDeviceOption(command);
  addBackboneOption(command);
  addPrecisionOption(command);
  addParallelOptions(command);
  addFeatureStoreOptions(command);
  addOutputOptions(command);
  command.action(async (modelFile: string, dataset: string, flags: FineTuneFlags) => {
    const featureStore = featureStoreFrom(flags);
    if (launches(flags)) {
      checkBackend(flags.device, flags.precision);
      throw new WorkersExited(await launchWorkers(process.argv, flags));
    }
    const model = await VideoRNN.load(modelFile, { device: workerDevice(flags.device), precision: flags.precision, threads: flags.threads, backboneWeights: flags.backbone, featureStore });
    try {
      const data = await openTrainingData(dataset, flags.val, { root: flags.root, seed: flags.seed, classes: model.classes });
      await runTrainingCommand({ command: 'fine-tune', model, dataset, data, flags, featureStore,
        fineTune: { trainableBackboneLayers: flags.unfreeze, backboneLearningRate: flags.backboneLr } });
    } finally {
      model.dispose();
    }
  });
}
