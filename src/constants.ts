// Facts about the model shared by validation, checkpoints and the CLI.

/** fc7 width of VGG16. */
export const EMBEDDING_SIZE = 4096;
/** Five 2x2 max-pools need at least 32 px. */
export const MIN_FRAME_SIZE = 32;
/**
 * VGG16 has 16 weight layers; fc8 is removed, so 15 remain in the backbone (13 convolutions, fc6,
 * fc7). The one limit of `trainableBackboneLayers`: native/addon/convert.cc refuses the same range.
 */
export const MAX_TRAINABLE_BACKBONE_LAYERS = 15;
export const CHECKPOINT_FORMAT = 'video-rnn';
/** What save writes; version 1 files (always self-contained, no backbone metadata) still load. */
export const CHECKPOINT_VERSION = '2';
export const CHECKPOINT_VERSIONS: readonly string[] = ['1', '2'];
