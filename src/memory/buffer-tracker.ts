/**
 * Peak bytes of distinct tensor buffers. tfjs-core's own accounting (`tf.memory().numBytes`, and so
 * `tf.profile().peakBytes`) adds a tensor's full size for every tensor object, so a reshape, a clone, or each
 * tensor the tape saves for backprop (tfjs clones them) counts the same buffer again. What a backend must
 * hold is one buffer per data id; this tracker follows the engine's data-id bookkeeping to measure that.
 */
import * as tf from '@tensorflow/tfjs';

interface TensorInfoEntry {
  bytes: number;
  backend: unknown;
}

interface EngineInternals {
  state: { tensorInfo: WeakMap<object, TensorInfoEntry> };
  trackTensor: (tensor: tf.Tensor, backend: unknown) => void;
  removeDataId: (dataId: object, backend: unknown) => void;
}

export class BufferTracker {
  private current = 0;
  private peak = 0;
  private restore?: () => void;

  /**
   * Starts following the engine. Counts are relative to this moment (the engine keeps its buffers in a
   * WeakMap, so the bytes alive before cannot be enumerated): `currentBytes` starts at 0.
   */
  start(): void {
    if (this.restore) throw new Error('BufferTracker is already started');
    const engine = tf.engine() as unknown as EngineInternals;
    const { tensorInfo } = engine.state;
    this.current = 0;
    this.peak = 0;
    const trackTensor = engine.trackTensor;
    const removeDataId = engine.removeDataId;
    engine.trackTensor = (tensor, backend) => {
      const isNewBuffer = !tensorInfo.has(tensor.dataId);
      trackTensor.call(engine, tensor, backend);
      if (isNewBuffer) {
        this.current += tensorInfo.get(tensor.dataId)?.bytes ?? 0;
        if (this.current > this.peak) this.peak = this.current;
      }
    };
    engine.removeDataId = (dataId, backend) => {
      const info = tensorInfo.get(dataId);
      removeDataId.call(engine, dataId, backend);
      if (info && !tensorInfo.has(dataId)) this.current -= info.bytes;
    };
    this.restore = () => {
      engine.trackTensor = trackTensor;
      engine.removeDataId = removeDataId;
    };
  }

  /** Bytes of buffers allocated since `start` and still alive, minus those freed since (may be negative). */
  get currentBytes(): number {
    return this.current;
  }

  /** The highest `currentBytes` since `start` or the last `resetPeak`. */
  get peakBytes(): number {
    return this.peak;
  }

  resetPeak(): void {
    this.peak = this.current;
  }

  stop(): void {
    this.restore?.();
    this.restore = undefined;
  }
}

/** Bytes of the distinct buffers behind `tensors` (each shared buffer once). */
export function distinctBufferBytes(tensors: Iterable<tf.Tensor>): number {
  const seen = new Set<object>();
  let bytes = 0;
  for (const tensor of tensors) {
    if (tensor.isDisposed || seen.has(tensor.dataId)) continue;
    seen.add(tensor.dataId);
    bytes += tensor.size * (tensor.dtype === 'float32' || tensor.dtype === 'int32' ? 4 : tensor.dtype === 'bool' ? 1 : 8);
  }
  return bytes;
}
