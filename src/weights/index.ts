export { readSafetensors, writeSafetensors, type SafetensorsContent } from './safetensors';
export { readTorchFile } from './pth';
export {
  loadBackboneWeights, readWeightsFile, VGG16_BACKBONE_TENSORS, type TensorSpec, type WeightsFormat,
} from './backbone';
export { backboneIdentity, type BackboneNaming, type BackboneReference } from './identity';
export { loadBackbone, resolveBackbone, BACKBONE_PATH_VARIABLE, type LoadedBackbone } from './reference';
export { DEFAULT_PICKLE_LIMITS, type PickleLimits } from './pickle-values';
