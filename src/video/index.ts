export { probeVideo, decodeConcurrency, slots as decodeSlots } from './decode';
export { decodeVideo, VideoDecoder } from './group';
export type { DecodeOptions, ProbeOptions } from './sampling';
export type { VideoInfo } from './probe';
export { ffmpegPath, ffprobePath, locateFfmpeg, setFfmpegPath } from './ffmpeg';
export type { FfmpegBinaries, FfmpegPathOptions, FfmpegSource } from './ffmpeg';
export { videoLimits, defaultVideoFormats } from './limits';
export type { VideoLimits } from './limits';
