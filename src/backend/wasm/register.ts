/**
 * Which project kernels go onto the 'wasm' backend, and how: kernels it lacks are added, slow kernels it has
 * are replaced (keeping the originals for fallbacks and for unregistering).
 */
import * as tf from '@tensorflow/tfjs';
import { conv2DBackpropFilterConfig } from './kernels/conv2d-backprop-filter.js';
import { conv2DGemmConfig } from './kernels/conv2d-gemm.js';
import { conv2DBackpropInputFastConfig } from './kernels/conv2d-backprop-input.js';
import { maxPoolGradFastConfig } from './kernels/max-pool-grad.js';
import { avgPoolGradFastConfig } from './kernels/avg-pool-grad.js';
import { batchMatMulFastConfig } from './kernels/batch-mat-mul.js';
import { identityAliasingConfig } from './kernels/identity.js';
import { sliceFastConfig } from './kernels/slice.js';
import { originalKernels, WASM_BACKEND } from './internals.js';

/** Training kernels tfjs-backend-wasm 4.22 lacks. */
export const WASM_TRAINING_KERNELS: readonly tf.KernelConfig[] = [conv2DBackpropFilterConfig];

/**
 * Replacements for wasm kernels that exist but are far slower than the forward pass, plus the Identity that
 * aliases (stock wasm copies every tensor the tape saves, doubling a training step's memory), and the 1×1
 * Conv2D on the own GEMM (more exact sums, as fast or faster).
 */
export const WASM_FAST_OVERRIDES: readonly tf.KernelConfig[] = [
  identityAliasingConfig,
  conv2DBackpropInputFastConfig,
  maxPoolGradFastConfig,
  avgPoolGradFastConfig,
  batchMatMulFastConfig,
  sliceFastConfig,
  conv2DGemmConfig,
];

/**
 * Registers, for the 'wasm' backend, training kernels it lacks
 * (Conv2DBackpropFilter). Kernels wasm already has are left alone. Returns
 * the names registered by this call; calling again registers nothing.
 */
export function registerWasmTrainingKernels(): string[] {
  const registered: string[] = [];
  for (const config of WASM_TRAINING_KERNELS) {
    if (tf.getKernel(config.kernelName, WASM_BACKEND) != null) continue;
    tf.registerKernel(config);
    registered.push(config.kernelName);
  }
  return registered;
}

/**
 * Replaces wasm kernels that exist but are far slower than the
 * forward pass (Conv2DBackpropInput, MaxPoolGrad, AvgPoolGrad, transposed or
 * batched BatchMatMul) with faster compositions, and Identity with one that
 * aliases. The originals are kept, used for cases the fast versions do not
 * cover, and restored by unregisterWasmFastOverrides(). Idempotent; returns
 * the names replaced by this call.
 */
export function registerWasmFastOverrides(): string[] {
  const replaced: string[] = [];
  for (const { kernelName, kernelFunc } of WASM_FAST_OVERRIDES) {
    const current = tf.getKernel(kernelName, WASM_BACKEND);
    if (current == null || current.kernelFunc === kernelFunc) continue;
    originalKernels.set(kernelName, current);
    tf.unregisterKernel(kernelName, WASM_BACKEND);
    // The original setupFunc stays attached: it binds the C++ entry point the
    // fallback path calls, and must run again if the backend is re-created.
    const cfg: tf.KernelConfig = { kernelName, backendName: WASM_BACKEND, kernelFunc };
    if (current.setupFunc != null) cfg.setupFunc = current.setupFunc;
    if (current.disposeFunc != null) cfg.disposeFunc = current.disposeFunc;
    tf.registerKernel(cfg);
    replaced.push(kernelName);
  }
  return replaced;
}

/** Restores the kernels replaced by registerWasmFastOverrides(). */
export function unregisterWasmFastOverrides(): string[] {
  const restored: string[] = [];
  for (const [kernelName, original] of originalKernels) {
    const current = tf.getKernel(kernelName, WASM_BACKEND);
    const override = WASM_FAST_OVERRIDES.find((c) => c.kernelName === kernelName);
    if (current != null && current.kernelFunc === override?.kernelFunc) {
      tf.unregisterKernel(kernelName, WASM_BACKEND);
      tf.registerKernel(original);
      restored.push(kernelName);
    }
    originalKernels.delete(kernelName);
  }
  return restored;
}
