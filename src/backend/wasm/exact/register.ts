/**
 * The `exact` kernels on the 'wasm' backend: they replace whatever kernel is registered under their names
 * (stock XNNPACK Conv2D, the project's fast overrides, its Conv2DBackpropFilter), fall back to it for cases
 * they do not cover (non-float32, NCHW, dilation, unbroadcastable batches), and restore it on unregister.
 */
import * as tf from '@tensorflow/tfjs';
import { WASM_BACKEND, type TensorInfo, type WasmKernelArgs } from '../internals.js';
import { batchMatMulExact } from './batch-mat-mul.js';
import { conv2DExact } from './conv2d.js';
import { conv2DBackpropFilterExact } from './conv2d-backprop-filter.js';
import { conv2DBackpropInputExact } from './conv2d-backprop-input.js';

type ExactKernel = (args: WasmKernelArgs<unknown, unknown>) => TensorInfo | null;

/** An exact kernel typed with tfjs's input and attr types, as the engine's untyped call sees it. */
function exactKernel<I, A>(kernelName: string, fn: (args: WasmKernelArgs<I, A>) => TensorInfo | null) {
  return { kernelName, exact: fn as unknown as ExactKernel };
}

/** The kernels whose float32 sums decide a step's numerics (issue #23), each returning null where not covered. */
export const WASM_EXACT_KERNELS: ReadonlyArray<{ kernelName: string; exact: ExactKernel }> = [
  exactKernel(tf.Conv2D, conv2DExact),
  exactKernel(tf.Conv2DBackpropInput, conv2DBackpropInputExact),
  exactKernel(tf.Conv2DBackpropFilter, conv2DBackpropFilterExact),
  exactKernel(tf.BatchMatMul, batchMatMulExact),
];

/** The kernel each exact one replaced, by name, while registered. */
const replaced = new Map<string, { previous: tf.KernelConfig; func: tf.KernelFunc }>();

/** Registers the exact kernels on 'wasm' (idempotent); returns the names replaced by this call. */
export function registerWasmExactKernels(): string[] {
  const names: string[] = [];
  for (const { kernelName, exact } of WASM_EXACT_KERNELS) {
    const previous = tf.getKernel(kernelName, WASM_BACKEND);
    if (previous == null || replaced.get(kernelName)?.func === previous.kernelFunc) continue;
    const func = ((args: WasmKernelArgs<unknown, unknown>) =>
      exact(args) ?? previous.kernelFunc(args as unknown as Parameters<tf.KernelFunc>[0])) as unknown as tf.KernelFunc;
    tf.unregisterKernel(kernelName, WASM_BACKEND);
    // The previous setupFunc stays attached: it binds the C++ entry point the fallback calls.
    const cfg: tf.KernelConfig = { kernelName, backendName: WASM_BACKEND, kernelFunc: func };
    if (previous.setupFunc != null) cfg.setupFunc = previous.setupFunc;
    if (previous.disposeFunc != null) cfg.disposeFunc = previous.disposeFunc;
    tf.registerKernel(cfg);
    replaced.set(kernelName, { previous, func });
    names.push(kernelName);
  }
  return names;
}

/** Restores the kernels registerWasmExactKernels() replaced; returns their names. */
export function unregisterWasmExactKernels(): string[] {
  const names: string[] = [];
  for (const [kernelName, { previous, func }] of replaced) {
    if (tf.getKernel(kernelName, WASM_BACKEND)?.kernelFunc === func) {
      tf.unregisterKernel(kernelName, WASM_BACKEND);
      tf.registerKernel(previous);
      names.push(kernelName);
    }
    replaced.delete(kernelName);
  }
  return names;
}
