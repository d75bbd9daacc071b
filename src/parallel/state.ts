/**
 * Moving a model's weights and optimizer state between tfjs instances (main thread and workers): tensors as
 * plain arrays, and optimizer state names made independent of the variable names each instance happens to
 * give (tfjs makes names unique per process, so the same model may be `conv/kernel` here and `conv/kernel_1`
 * there): a variable is named by its index among the model's trainable weights.
 */
import * as tf from '@tensorflow/tfjs';
import type { NamedTensor } from '../step/optimizers.js';
import type { ArrayTensor, PortableState } from './protocol.js';

export function toArrayTensor(t: tf.Tensor): ArrayTensor {
  const dtype = t.dtype === 'int32' ? 'int32' : 'float32';
  const data = t.dataSync();
  // dataSync may hand out the backend's own array (cpu): copy, so the caller may transfer it.
  const values = dtype === 'int32' ? Int32Array.from(data as Int32Array) : Float32Array.from(data as Float32Array);
  return { values, shape: [...t.shape], dtype };
}

export function fromArrayTensor(a: ArrayTensor): tf.Tensor {
  return tf.tensor(a.values, a.shape, a.dtype);
}

/** The transferable buffers of some array tensors. */
export function buffersOf(tensors: ArrayTensor[]): ArrayBuffer[] {
  return tensors.map((t) => t.values.buffer as ArrayBuffer);
}

/**
 * Optimizer state names are `group:<variable name>/<slot>` (or without a variable: `group:iter`); the variable
 * part becomes `#<index>`.
 */
function rename(name: string, from: (variable: string) => string | undefined): string {
  const colon = name.indexOf(':');
  const rest = name.slice(colon + 1);
  // The longest prefix that names a variable: names may contain '/' themselves.
  for (let cut = rest.lastIndexOf('/'); cut > 0; cut = rest.lastIndexOf('/', cut - 1)) {
    const replaced = from(rest.slice(0, cut));
    if (replaced !== undefined) return `${name.slice(0, colon + 1)}${replaced}${rest.slice(cut)}`;
  }
  return name;
}

export function toPortableState(state: NamedTensor[], variables: tf.Variable[]): PortableState[] {
  const index = new Map(variables.map((v, i) => [v.name, `#${i}`]));
  return state.map((s) => ({ name: rename(s.name, (v) => index.get(v)), tensor: toArrayTensor(s.tensor) }));
}

/** The inverse of toPortableState for this instance's variables; the tensors are the caller's. */
export function fromPortableState(state: PortableState[], variables: tf.Variable[]): NamedTensor[] {
  const byIndex = (token: string) => (token.startsWith('#') ? variables[Number(token.slice(1))]?.name : undefined);
  return state.map((s) => ({ name: rename(s.name, byIndex), tensor: fromArrayTensor(s.tensor) }));
}
