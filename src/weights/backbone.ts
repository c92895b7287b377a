import type { HostTensor, TensorMap } from '../clip';
import { VideoRNNError } from '../errors';
import { WeightsFile } from './file';
import { isPickleSignature, isZipSignature, readTorch } from './pth';
import { readSafetensorsFile } from './safetensors';

export interface TensorSpec {
  readonly name: string;
  readonly shape: readonly number[];
}

// torchvision/models/vgg.py, configuration "D": channels per 3x3 conv, "M" a 2x2 max-pool.
const VGG16_FEATURES: readonly (number | 'M')[] = [64, 64, 'M', 128, 128, 'M', 256, 256, 256, 'M', 512, 512, 512, 'M', 512, 512, 512, 'M'];
const FC_SIZE = 4096;
const POOLED_FEATURES = 512 * 7 * 7;

function vgg16Specs(): TensorSpec[] {
  const specs: TensorSpec[] = [];
  let channels = 3;
  let index = 0;
  for (const layer of VGG16_FEATURES) {
    if (layer === 'M') {
      index += 1;
      continue;
    }
    specs.push({ name: `features.${index}.weight`, shape: [layer, channels, 3, 3] });
    specs.push({ name: `features.${index}.bias`, shape: [layer] });
    channels = layer;
    // Each conv is followed by its ReLU, which holds no weights but takes an index.
    index += 2;
  }
  specs.push({ name: 'classifier.0.weight', shape: [FC_SIZE, POOLED_FEATURES] });
  specs.push({ name: 'classifier.0.bias', shape: [FC_SIZE] });
  specs.push({ name: 'classifier.3.weight', shape: [FC_SIZE, FC_SIZE] });
  specs.push({ name: 'classifier.3.bias', shape: [FC_SIZE] });
  return specs;
}

/**
 * The VGG16 backbone's tensors in torchvision's names and order: 13 convs (features.*) and fc6,
 * fc7 (classifier.0, classifier.3). fc8 (classifier.6) is not part of the backbone.
 */
export const VGG16_BACKBONE_TENSORS: readonly TensorSpec[] = Object.freeze(
  vgg16Specs().map((spec) => Object.freeze({ name: spec.name, shape: Object.freeze([...spec.shape]) })));

// timm's vgg16.tv_in1k keeps features.* but holds fc6/fc7 as 7x7 and 1x1 convolutions
// (timm/models/vgg.py, ConvMlp); their weights are the same numbers in the same order.
const TIMM_NAMES: ReadonlyMap<string, TensorSpec> = new Map([
  ['classifier.0.weight', { name: 'pre_logits.fc1.weight', shape: [FC_SIZE, 512, 7, 7] }],
  ['classifier.0.bias', { name: 'pre_logits.fc1.bias', shape: [FC_SIZE] }],
  ['classifier.3.weight', { name: 'pre_logits.fc2.weight', shape: [FC_SIZE, FC_SIZE, 1, 1] }],
  ['classifier.3.bias', { name: 'pre_logits.fc2.bias', shape: [FC_SIZE] }],
]);

export type WeightsFormat = 'torch-zip' | 'torch-legacy' | 'safetensors';

function detectFormat(head: Uint8Array): WeightsFormat | undefined {
  if (isZipSignature(head)) return 'torch-zip';
  // The legacy magic number: PROTO n, then LONG1 of 10 bytes. A safetensors header length cannot
  // start with these four bytes without exceeding 100 MB, so the two never collide.
  if (isPickleSignature(head) && head[2] === 0x8a && head[3] === 0x0a) return 'torch-legacy';
  // safetensors: a header length whose JSON starts right after it.
  if (head.length >= 9 && head[8] === 0x7b) return 'safetensors';
  // Any other pickle: let the torch reader say what is wrong with it (a foreign global, say).
  if (isPickleSignature(head)) return 'torch-legacy';
  return undefined;
}

/** Reads any supported weights file (torch zip, torch legacy, safetensors), chosen by content. */
export async function readWeightsFile(path: string): Promise<{ format: WeightsFormat; tensors: TensorMap }> {
  return WeightsFile.use(path, async (file) => {
    const head = await file.read(0, Math.min(file.size, 9), 'the file signature');
    const format = detectFormat(head);
    if (!format) throw file.error('is not a weights file (expected a PyTorch .pth or a .safetensors file)');
    const tensors = format === 'safetensors' ? (await readSafetensorsFile(file)).tensors : await readTorch(file);
    return { format, tensors };
  });
}

function formatShape(shape: readonly number[]): string {
  return `[${shape.join(', ')}]`;
}

function sameShape(first: readonly number[], second: readonly number[]): boolean {
  return first.length === second.length && first.every((size, index) => size === second[index]);
}

/**
 * Loads pretrained VGG16 weights for the backbone from a torchvision .pth (legacy or zip), a
 * safetensors file with torchvision or timm names, or any of these with a "module." prefix
 * (DataParallel). Returns exactly VGG16_BACKBONE_TENSORS, in that order; fc8 and anything else
 * in the file is ignored. A missing tensor or wrong shape: E_WEIGHTS_SHAPE naming it.
 */
export async function loadBackboneWeights(path: string): Promise<TensorMap> {
  return (await readBackbone(path)).tensors;
}

/** loadBackboneWeights, and which naming the file used (timm's when its fc6/fc7 were conv-shaped). */
export async function readBackbone(path: string): Promise<{ tensors: TensorMap; naming: 'torchvision' | 'timm' }> {
  const { tensors } = await readWeightsFile(path);
  let naming: 'torchvision' | 'timm' = 'torchvision';
  const byName = new Map<string, HostTensor>();
  for (const [name, tensor] of tensors) byName.set(name.startsWith('module.') ? name.slice('module.'.length) : name, tensor);

  const result: TensorMap = new Map();
  const problems: string[] = [];
  for (const spec of VGG16_BACKBONE_TENSORS) {
    let fileName = spec.name;
    let fileShape = spec.shape;
    let tensor = byName.get(fileName);
    const timm = TIMM_NAMES.get(spec.name);
    if (!tensor && timm && byName.has(timm.name)) {
      fileName = timm.name;
      fileShape = timm.shape;
      naming = 'timm';
      tensor = byName.get(fileName);
    }
    const label = fileName === spec.name ? spec.name : `${spec.name} (${fileName} in the file)`;
    if (!tensor) {
      problems.push(`${spec.name} is missing (expected shape ${formatShape(spec.shape)})`);
      continue;
    }
    // timm's conv-shaped fc6/fc7 flatten row-major into torchvision's Linear weights: only the
    // shape changes.
    if (!sameShape(tensor.shape, fileShape)) {
      problems.push(`${label} has shape ${formatShape(tensor.shape)}, expected ${formatShape(fileShape)}`);
      continue;
    }
    result.set(spec.name, { shape: [...spec.shape], data: tensor.data });
  }
  if (problems.length > 0) {
    const more = problems.length > 1 ? ` (and ${problems.length - 1} more problem${problems.length > 2 ? 's' : ''})` : '';
    throw new VideoRNNError('E_WEIGHTS_SHAPE', `${path} is not a VGG16 backbone: ${problems[0]}${more}`);
  }
  return { tensors: result, naming };
}
