/** What every meta kernel uses: its inputs, fresh and aliased outputs, and the kernel types. */
import * as tf from '@tensorflow/tfjs';
import type { MetaBackend } from './backend.js';

export type Inputs = tf.NamedTensorInfoMap;
export type Out = tf.TensorInfo | tf.TensorInfo[];
export type Shape4 = [number, number, number, number];

/** A meta kernel: computes output shapes and dtypes (and aliasing) from its inputs and attrs. */
export type MetaKernel<A = tf.NamedAttrMap> = (inputs: Inputs, attrs: A, b: MetaBackend, kernel: string) => Out;

/** Meta kernels by tfjs kernel name (tf.Conv2D, tf.Sum, …), one table per family of kernels. */
export type MetaKernelTable = Readonly<Record<string, MetaKernel>>;

/**
 * A kernel whose attrs are tfjs's attr type for it (tf.SumAttrs, …). The engine hands kernels an untyped
 * NamedAttrMap; this is the one place that says what it holds, as tfjs's own backends do.
 */
export function withAttrs<A>(impl: MetaKernel<A>): MetaKernel {
  return impl as unknown as MetaKernel;
}

export function input(inputs: Inputs, name: string, kernel: string): tf.TensorInfo {
  const t = inputs[name];
  if (t == null) throw new Error(`${kernel} on the meta backend: input '${name}' is missing`);
  return t;
}

export function inputList(inputs: Inputs, kernel: string): tf.TensorInfo[] {
  // Concat, AddN and Pack receive their tensors as an array, not a named map.
  const list: unknown = inputs;
  if (!Array.isArray(list)) throw new Error(`${kernel} on the meta backend: expected an array of inputs`);
  return list as tf.TensorInfo[];
}

/** A new buffer of this shape and dtype, as the real kernel allocates. */
export function fresh(b: MetaBackend, shape: number[], dtype: tf.DataType): tf.TensorInfo {
  return b.makeTensorInfo(shape, dtype);
}

/** The output shares the input's buffer, as cpu/wasm Reshape does: one more reference, no bytes. */
export function alias(b: MetaBackend, x: tf.TensorInfo, shape: number[] = x.shape, dtype: tf.DataType = x.dtype): tf.TensorInfo {
  b.incRef(x.dataId);
  return { dataId: x.dataId, shape, dtype };
}

/**
 * cpu's Identity aliases, stock wasm's copies; the project's wasm overrides (registerWasmFastOverrides) make
 * wasm's alias too, and registerMetaWasmTrainingKernels() mirrors that.
 */
export function identity(b: MetaBackend, x: tf.TensorInfo): tf.TensorInfo {
  return b.traits.identityAliases ? alias(b, x) : fresh(b, x.shape, x.dtype);
}

export function assertNotComplex(kernel: string, ...ts: Array<tf.TensorInfo | undefined>): void {
  for (const t of ts) {
    if (t != null && t.dtype === 'complex64') {
      throw new Error(`${kernel} on the meta backend: complex64 tensors are not supported`);
    }
  }
}

export function upcast(a: tf.DataType, b: tf.DataType): tf.DataType {
  return tf.upcastType(a, b);
}
