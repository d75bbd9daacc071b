/**
 * What our WebGPU kernels need of tfjs-backend-webgpu: its WebGPUProgram shape (exported as a type) and the
 * backend's runWebGPUProgram, which compiles a program once per shaderKey, binds the inputs as
 * `array<f32>` storage buffers named by `variableNames`, the output as `result`, and `uniforms` as a struct.
 * Only types come from the package (it is an optional dependency, loaded by the caller at run time).
 */
import type * as tf from '@tensorflow/tfjs';
import type { WebGPUProgram } from '@tensorflow/tfjs-backend-webgpu';

/** The backend name our kernels register under (kept in backend/, the one place names are written). */
export const WEBGPU_BACKEND = 'webgpu';

export type Uniform = { type: 'int32' | 'uint32' | 'float32'; data: number[] };

export interface WebGPUBackendLike {
  runWebGPUProgram(program: WebGPUProgram, inputs: tf.TensorInfo[], dtype: tf.DataType, uniforms?: Uniform[]): tf.TensorInfo;
}

export type { WebGPUProgram };

/** A program's fields, with the ones runWebGPUProgram fills in (dispatch is recomputed by it too). */
export function program(fields: Omit<WebGPUProgram, 'dispatch'> & { dispatch: [number, number, number] }): WebGPUProgram {
  return fields;
}

export function assertFloat32(kernel: string, ...tensors: tf.TensorInfo[]): void {
  for (const t of tensors) {
    if (t.dtype !== 'float32') throw new Error(`webgpu-kernels: ${kernel} supports float32 only, got ${t.dtype}`);
  }
}

/**
 * WebGPU's guaranteed limit on workgroups per dispatch dimension. tfjs reshapes a larger dispatch, which
 * would scramble the workgroup ids our programs index by, so such calls go to the stock kernel instead.
 */
export const MAX_WORKGROUPS_PER_DIMENSION = 65535;

const stockKernels = new Map<string, tf.KernelFunc>();

/** Remembers tfjs-webgpu's own kernel (register.ts, before replacing it): ours fall back to it. */
export function setStockKernel(kernelName: string, kernelFunc: tf.KernelFunc): void {
  stockKernels.set(kernelName, kernelFunc);
}

/** Runs tfjs-webgpu's own kernel for a call ours does not cover. */
export function runStock(kernelName: string, args: unknown): tf.TensorInfo {
  const stock = stockKernels.get(kernelName);
  if (!stock) throw new Error(`webgpu-kernels: no stock ${kernelName} kernel to fall back to`);
  return stock(args as Parameters<tf.KernelFunc>[0]) as tf.TensorInfo;
}
