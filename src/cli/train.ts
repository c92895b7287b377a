// `video-rnn train <dataset> -o model.safetensors`: a new model on a folder or a manifest.
import { Command } from 'commander';
import { MAX_TRAINABLE_BACKBONE_LAYERS, MIN_FRAME_SIZE } from '../constants';
import { VideoRNN } from '../model';
import { Device, LIMITS, Sampling } from '../options';
import * as parse from './arguments';
import { addBackboneOption, addDeviceOption, addOutputOptions, addParallelOptions, addPrecisionOption, addTrainingOptions, checkBackend } from './common';
import { WorkersExited, launchWorkers, launches, workerDevice } from './launch';
import { openTrainingData } from './datasets';
import { addFeatureStoreOptions, featureStoreFrom } from './feature-store';
import { TrainingFlags, runTrainingCommand } from './training-run';

interface TrainFlags extends TrainingFlags {
  weights?: string;
  trainableLayers: number;
  hiddenSize: number;
  headSize: number;
  layers: number;
  unidirectional: boolean;
  dropout: number;
  frameSize: number;
  fps?: number;
  maxFrames?: number;
  frames?: number;
  device: Device;
  root?: string;
}

export function registerTrain(program: Command): void {
  const command = program.command('train')
    .description('train a new model on a dataset: a folder with one sub-folder per class, or a manifest file')
    .argument('<dataset>', 'dataset folder (<dataset>/<class>/<video>) or manifest (path label lines, CSV, UCF101 list)');
  addTrainingOptions(command, { epochs: 10, lr: 1e-3 })
    .option('--weights <file>', 'pretrained VGG16 weights (.pth or .safetensors); default: random initialisation')
    .option('--trainable-layers <n>', `VGG16 weight layers trained from the top (0: frozen, up to ${MAX_TRAINABLE_BACKBONE_LAYERS})`,
      parse.integerBetween(0, MAX_TRAINABLE_BACKBONE_LAYERS), 0)
    .option('--hidden-size <n>', 'LSTM units per direction', parse.positiveInteger, 2048)
    .option('--head-size <n>', 'units of the hidden layer of the head', parse.positiveInteger, 256)
    .option('--layers <n>', 'stacked LSTM layers', parse.positiveInteger, 1)
    .option('--unidirectional', 'a one-way LSTM instead of a bidirectional one', false)
    .option('--dropout <p>', 'dropout probability while training: in the head (after its ReLU) and between LSTM layers', parse.nonNegativeNumber, 0)
    .option('--frame-size <px>', 'frames are resized and centre-cropped to this square', parse.integerBetween(MIN_FRAME_SIZE, LIMITS.frameSize), 224)
    .option('--fps <rate>', 'decode at this frame rate (default: every frame)', parse.positiveNumber)
    .option('--max-frames <n>', 'keep at most this many frames per clip', parse.positiveInteger)
    .option('--frames <n>', 'take exactly this many frames, spread over the clip', parse.positiveInteger);
  addDeviceOption(command);
  addBackboneOption(command);
  addPrecisionOption(command);
  addParallelOptions(command);
  addFeatureStoreOptions(command);
  addOutputOptions(command);
  command.action(async (dataset: string, flags: TrainFlags) => {
    const featureStore = featureStoreFrom(flags);
    if (launches(flags)) {
      checkBackend(flags.device, flags.precision);
      throw new WorkersExited(await launchWorkers(process.argv, flags));
    }
    const data = await openTrainingData(dataset, flags.val, { root: flags.root, seed: flags.seed });
    const sampling: Sampling = {};
    if (flags.fps !== undefined) sampling.fps = flags.fps;
    if (flags.maxFrames !== undefined) sampling.maxFrames = flags.maxFrames;
    if (flags.frames !== undefined) sampling.frames = flags.frames;
    // A resumed run rebuilds the model the checkpoint describes; the architecture flags do not apply.
    const model = flags.resume
      ? await VideoRNN.load(flags.resume, { device: workerDevice(flags.device), precision: flags.precision, threads: flags.threads, backboneWeights: flags.backbone, featureStore })
      : await VideoRNN.create({
        classes: data.train.classes, backboneWeights: flags.weights, trainableBackboneLayers: flags.trainableLayers,
        hiddenSize: flags.hiddenSize, headSize: flags.headSize, numLayers: flags.layers, bidirectional: !flags.unidirectional,
        dropout: flags.dropout, frameSize: flags.frameSize, sampling, device: workerDevice(flags.device), precision: flags.precision, seed: flags.seed,
        threads: flags.threads, featureStore,
      });
    try {
      await runTrainingCommand({ command: 'train', model, dataset, data, flags, featureStore });
    } finally {
      model.dispose();
    }
  });
}
