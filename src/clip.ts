/** RGB24 frames, row-major [frames, height, width, 3]. */
export interface Clip {
  data: Uint8Array;
  frames: number;
  height: number;
  width: number;
}

/** A host-side float32 tensor: what weights readers produce and checkpoints store. */
export interface HostTensor {
  shape: number[];
  data: Float32Array;
}

export type TensorMap = Map<string, HostTensor>;
