// Datasets named on the command line: a folder with one sub-folder per class, or a manifest file.
import fs from 'node:fs';
import { VideoRNNError } from '../errors';
import { Dataset, ManifestDataset, Sample, VideoFolderDataset, split } from '../data';
import type { ValidationSpec } from './arguments';

export interface OpenOptions {
  /** Folder that relative manifest paths start from (default: the manifest's folder). */
  root?: string;
  /** The model's classes, when the dataset must be read in their order. */
  classes?: string[];
}

export async function openDataset(location: string, options: OpenOptions = {}): Promise<Dataset> {
  const stats = await fs.promises.stat(location).catch(() => null);
  if (stats === null) throw new VideoRNNError('E_DATASET_NOT_FOUND', `Dataset not found: ${location} (expected a folder or a manifest file)`);
  if (stats.isDirectory()) {
    const dataset = await VideoFolderDataset.open(location);
    return options.classes ? alignClasses(dataset, options.classes, location) : dataset;
  }
  // A manifest names its labels; reading it with the model's classes keeps their order.
  return ManifestDataset.open(location, { root: options.root, classes: options.classes });
}

/**
 * A folder's classes are its sub-folders in name order. A test folder may hold fewer classes than the
 * model was trained on; its labels are renumbered to the model's order. A class the model does not
 * know is an error.
 */
export function alignClasses(dataset: Dataset, classes: string[], location: string): Dataset {
  const same = dataset.classes.length === classes.length && dataset.classes.every((label, index) => label === classes[index]);
  if (same) return dataset;
  const unknown = dataset.classes.filter((label) => !classes.includes(label));
  if (unknown.length > 0) {
    throw new VideoRNNError('E_INVALID_ARGUMENT',
      `${location} has classes the model does not know: ${unknown.join(', ')} (model classes: ${classes.join(', ')})`);
  }
  const mapping = dataset.classes.map((label) => classes.indexOf(label));
  return {
    classes: [...classes],
    size: dataset.size,
    sample(index: number): Sample {
      const sample = dataset.sample(index);
      return { ...sample, label: mapping[sample.label] };
    },
  };
}

export interface TrainingData {
  train: Dataset;
  validation?: Dataset;
}

/** The training set and, with `--val`, a held-out fraction of it or a second dataset. */
export async function openTrainingData(location: string, validation: ValidationSpec | undefined,
  options: OpenOptions & { seed?: number } = {}): Promise<TrainingData> {
  const data = await openDataset(location, options);
  if (validation === undefined) return { train: data };
  if ('fraction' in validation) return split(data, validation.fraction, options.seed ?? 0);
  const held = await openDataset(validation.dataset, { root: options.root, classes: data.classes });
  return { train: data, validation: held };
}
