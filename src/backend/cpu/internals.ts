/**
 * What the cpu backend's exact kernels share: reading a tensor's float32 values in place, making the
 * output tensor the way tfjs-backend-cpu's own kernels do (one buffer per output, nothing else), and the
 * stock kernels kept for the cases the exact ones leave to them.
 */
import * as tf from '@tensorflow/tfjs';

export const CPU_BACKEND = 'cpu';

export type TensorInfo = tf.TensorInfo;

/** The parts of tfjs-backend-cpu's MathBackendCPU these kernels use. */
export interface CpuBackendInternals {
  data: { get(dataId: object): { values: unknown } };
  makeTensorInfo(shape: number[], dtype: tf.DataType, values: Float32Array): TensorInfo;
}

export interface CpuKernelArgs<I, A> {
  inputs: I;
  backend: CpuBackendInternals;
  attrs: A;
}

/** The stock kernels replaced by register.ts, by name: the exact kernels hand them what they do not cover. */
export const originalKernels = new Map<string, tf.KernelConfig>();

/** Runs the stock kernel for a case the exact kernel does not cover (other dtypes, dilations, NCHW). */
export function stock(name: string, args: unknown): TensorInfo | TensorInfo[] {
  const original = originalKernels.get(name);
  if (!original) throw new Error(`cpu kernel ${name}: no stock kernel to fall back on`);
  return original.kernelFunc(args as Parameters<tf.KernelFunc>[0]);
}

/** The float32 values behind a tensor, read in place (no copy). */
export function float32Values(backend: CpuBackendInternals, t: TensorInfo): Float32Array {
  return backend.data.get(t.dataId as object).values as Float32Array;
}

export function isFloat32(...tensors: TensorInfo[]): boolean {
  return tensors.every((t) => t.dtype === 'float32');
}

/** A new float32 tensor holding `values` (which it takes over). */
export function output(backend: CpuBackendInternals, shape: number[], values: Float32Array): TensorInfo {
  return backend.makeTensorInfo(shape, 'float32', values);
}

/** Geometry of an NHWC convolution, or null if the exact kernels leave it to the stock one. */
export function nhwcConvInfo(
  xShape: number[],
  filterShape: number[],
  attrs: { strides: number | [number, number]; pad: tf.Conv2DAttrs['pad']; dataFormat?: string; dilations?: number | [number, number]; dimRoundingMode?: tf.Conv2DAttrs['dimRoundingMode'] },
): tf.backend_util.Conv2DInfo | null {
  if (attrs.dataFormat === 'NCHW') return null;
  const info = tf.backend_util.computeConv2DInfo(
    xShape as [number, number, number, number], filterShape as [number, number, number, number],
    attrs.strides, attrs.dilations ?? 1, attrs.pad, attrs.dimRoundingMode, false, 'channelsLast',
  );
  return info.dilationHeight === 1 && info.dilationWidth === 1 ? info : null;
}
