export type { Dataset, Sample, VideoSource, FileEntry } from './dataset';
export { FileDataset } from './dataset';
export { VideoFolderDataset, videoExtensions } from './folder';
export type { VideoFolderOptions } from './folder';
export { ManifestDataset } from './manifest';
export type { ManifestFormat, ManifestOptions } from './manifest';
export { split, SubsetDataset } from './split';
export { makeSyntheticDataset, motionClasses, SyntheticDataset } from './synthetic';
export type { MotionClass, SyntheticClip, SyntheticOptions } from './synthetic';
