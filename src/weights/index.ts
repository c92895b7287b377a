export { readSafetensors, writeSafetensors, type SafetensorsContent } from './safetensors';
export { readTorchFile } from './pth';
export {
  loadBackboneWeights, readWeightsFile, VGG16_BACKBONE_TENSORS, type TensorSpec, type WeightsFormat,
} from './backbone';
export { DEFAULT_PICKLE_LIMITS, type PickleLimits } from './pickle-values';
