export { VideoRNN } from './model';
export type { Prediction, ModelStats } from './model';
export type { ExtractOptions, ExtractReport } from './features/extract';
export type { BackboneInfo, BackboneSource } from './model-backbone';
export { inspectCheckpoint } from './checkpoint-info';
export type { CheckpointInfo } from './checkpoint-info';
export type { VideoRNNOptions, ModelConfig, Sampling, Device, Precision } from './options';
export type { TrainOptions, FineTuneOptions, TrainReport, EpochReport, ProgressEvent } from './training';
export type { EvalReport } from './metrics';
export type { VideoInput } from './inputs';
export type { DistributedOptions } from './distributed';
export type { Clip, HostTensor, TensorMap } from './clip';
export { VideoRNNError } from './errors';
export type { ErrorCode } from './errors';
export { backendInfo } from './backend';
export type { BackendInfo, CpuBf16 } from './backend';
export {
  decodeVideo, probeVideo, decodeConcurrency, setFfmpegPath, locateFfmpeg, ffmpegPath, ffprobePath, videoLimits, defaultVideoFormats,
} from './video';
export type { DecodeOptions, ProbeOptions, VideoInfo, FfmpegBinaries, FfmpegPathOptions, FfmpegSource, VideoLimits } from './video';
export { VideoFolderDataset, ManifestDataset, FileDataset, SubsetDataset, split, makeSyntheticDataset } from './data';
export type { Dataset, Sample, VideoSource } from './data';
export { loadBackboneWeights, readSafetensors, writeSafetensors, readTorchFile, backboneIdentity, loadBackbone, BACKBONE_PATH_VARIABLE } from './weights';
export type { BackboneNaming, BackboneReference } from './weights';
export { PredictionService } from './serve';
export type { BatchEvent, PredictionServiceOptions, ServicePredictOptions, ServiceStats } from './serve';
export { FeatureStore, featureKey, videoDigest } from './features/store';
export type { FeatureStoreCounters } from './features/store';
export type { PruneOptions } from './features/maintenance';
export type { VideoDigest } from './features/identity';
export type {
  FeatureDtype, FeatureStoreOption, FeatureStoreSettings, EntryOrigin, StoredFeatures, FeatureStoreStats, PruneReport,
} from './features/types';
