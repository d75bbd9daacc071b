/**
 * A float32 tensor's values where the backend keeps them, without a copy: a view of tfjs-backend-wasm's heap
 * or tfjs-backend-cpu's own array (the backend trait `valuesInPlace` says which). Batch norm's float64 channel
 * sums read activations this way, and data-parallel workers read gradients and weights this way each step
 * instead of copying 28 MB out with dataSync.
 */
import * as tf from '@tensorflow/tfjs';
import { backendTraits } from './traits.js';

/** The parts of tfjs-backend-wasm's BackendWasm and tfjs-backend-cpu's MathBackendCPU read here. */
interface WasmBackendLike {
  wasm: { HEAPU8: Uint8Array };
  dataIdMap: { get(dataId: object): { memoryOffset: number } | undefined };
}
interface CpuBackendLike {
  data: { get(dataId: object): { values?: unknown } | undefined };
}

/**
 * The float32 values of `t` in place: a view of the wasm heap, or the cpu backend's own array; null when the
 * current backend does not hold them so (another backend, another dtype). Valid until the next allocation (a
 * growing wasm heap detaches earlier views), so read it at once; never write it (tfjs-backend-wasm's XNNPACK
 * convolutions keep weights packed by tensor id, so a value changed in place would not be seen).
 */
export function valuesInPlace(t: tf.Tensor): Float32Array | null {
  if (t.dtype !== 'float32') return null;
  const backend = tf.backend() as unknown;
  const where = backendTraits().valuesInPlace;
  if (where === 'wasm-heap') {
    const wasm = backend as WasmBackendLike;
    const data = wasm.dataIdMap.get(t.dataId as object);
    return data ? new Float32Array(wasm.wasm.HEAPU8.buffer, data.memoryOffset >>> 0, t.size) : null;
  }
  if (where !== 'js-array') return null;
  const values = (backend as CpuBackendLike).data.get(t.dataId as object)?.values;
  if (!(values instanceof Float32Array) || values.length < t.size) return null;
  return values.length === t.size ? values : values.subarray(0, t.size);
}

/** valuesInPlace, or else the values read back (a copy). */
export function float32Values(t: tf.Tensor): Float32Array {
  return valuesInPlace(t) ?? Float32Array.from(t.dataSync() as ArrayLike<number>);
}

/**
 * A new float32 tensor holding a copy of `values`, which the caller may overwrite afterwards: the wasm backend
 * copies written values onto its heap anyway; the others would keep the array itself (cpu), so it is copied
 * first.
 */
export function tensorOfCopy(values: Float32Array, shape: number[]): tf.Tensor {
  return tf.tensor(backendTraits().valuesInPlace === 'wasm-heap' ? values : values.slice(), shape, 'float32');
}
