import { checkInteger, invalidArgument } from '../errors';
import type { Dataset, Sample } from './dataset';
import { checkLabel, compareNames } from './dataset';
import { createRandom, hashSeed, shuffleInPlace } from './random';

/** A view of some samples of another dataset, in the given order. */
export class SubsetDataset implements Dataset {
  readonly classes: string[];
  readonly indices: readonly number[];

  constructor(private readonly parent: Dataset, indices: readonly number[]) {
    this.classes = parent.classes;
    this.indices = Object.freeze([...indices]);
  }

  get size(): number {
    return this.indices.length;
  }

  sample(index: number): Sample {
    return this.parent.sample(this.indices[checkInteger('index', index, 0, this.indices.length - 1)]);
  }
}

function checkDataset(value: unknown): Dataset {
  const candidate = value as Partial<Dataset> | null;
  if (typeof candidate !== 'object' || candidate === null || !Array.isArray(candidate.classes) ||
      typeof candidate.size !== 'number' || typeof candidate.sample !== 'function') {
    throw invalidArgument('dataset', 'a Dataset (classes, size, sample)', value);
  }
  return candidate as Dataset;
}

/**
 * How many of each class go to validation: round(total x fraction) overall, handed out by largest
 * remainder so each class gets its share, and every class with two or more samples keeps at least
 * one for training.
 */
function validationQuota(counts: number[], fraction: number): number[] {
  const total = counts.reduce((sum, count) => sum + count, 0);
  const target = Math.floor(total * fraction + 0.5);
  const caps = counts.map((count) => Math.max(count - 1, 0));
  const quota = counts.map((count, label) => Math.min(Math.floor(count * fraction), caps[label]));
  let left = target - quota.reduce((sum, count) => sum + count, 0);
  const order = counts.map((count, label) => ({ label, remainder: count * fraction - Math.floor(count * fraction) }))
    .sort((first, second) => second.remainder - first.remainder || first.label - second.label);
  while (left > 0) {
    let given = false;
    for (const { label } of order) {
      if (left === 0) break;
      if (quota[label] < caps[label]) {
        quota[label] += 1;
        left -= 1;
        given = true;
      }
    }
    if (!given) break;
  }
  return quota;
}

/**
 * A stratified, deterministic train/validation split. `fraction` is the validation share. Within a
 * class, samples are ordered by id before a seeded shuffle, so the split depends on the ids and the
 * seed, not on the order the dataset lists them in.
 */
export function split(dataset: Dataset, fraction: number, seed = 0): { train: SubsetDataset; validation: SubsetDataset } {
  const source = checkDataset(dataset);
  if (typeof fraction !== 'number' || !Number.isFinite(fraction) || fraction <= 0 || fraction >= 1) {
    throw invalidArgument('fraction', 'number greater than 0 and less than 1', fraction);
  }
  checkInteger('seed', seed, 0, 4294967295);
  const members: { index: number; id: string }[][] = source.classes.map(() => []);
  for (let index = 0; index < source.size; index += 1) {
    const sample = source.sample(index);
    members[checkLabel(sample.label, source.classes.length, `sample ${index}`)].push({ index, id: sample.id });
  }
  const quota = validationQuota(members.map((list) => list.length), fraction);
  const train: number[] = [];
  const validation: number[] = [];
  members.forEach((list, label) => {
    list.sort((left, right) => compareNames(left.id, right.id) || left.index - right.index);
    shuffleInPlace(list, createRandom(hashSeed(seed, source.classes[label])));
    list.forEach((member, position) => (position < quota[label] ? validation : train).push(member.index));
  });
  const ascending = (left: number, right: number): number => left - right;
  return {
    train: new SubsetDataset(source, train.sort(ascending)),
    validation: new SubsetDataset(source, validation.sort(ascending)),
  };
}
