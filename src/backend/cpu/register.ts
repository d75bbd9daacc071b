/**
 * Which project kernels go onto tfjs's 'cpu' backend: its convolutions and matrix products, replaced by
 * ones that sum in float64 and round once (./kernels). The stock kernels are kept for the cases these do
 * not cover and for unregistering.
 */
import * as tf from '@tensorflow/tfjs';
import { conv2DExactConfig } from './kernels/conv2d.js';
import { conv2DBackpropFilterExactConfig } from './kernels/conv2d-backprop-filter.js';
import { conv2DBackpropInputExactConfig } from './kernels/conv2d-backprop-input.js';
import { batchMatMulExactConfig, fusedMatMulExactConfig } from './kernels/batch-mat-mul.js';
import { CPU_BACKEND, originalKernels } from './internals.js';

/** The cpu kernels whose sums decide a training step's rounding error (see the README's parity paragraph). */
export const CPU_EXACT_KERNELS: readonly tf.KernelConfig[] = [
  conv2DExactConfig,
  conv2DBackpropFilterExactConfig,
  conv2DBackpropInputExactConfig,
  batchMatMulExactConfig,
  fusedMatMulExactConfig,
];

/** Replaces the cpu backend's convolutions and products by the exact ones. Idempotent; returns the names replaced by this call. */
export function registerCpuExactKernels(): string[] {
  const replaced: string[] = [];
  for (const config of CPU_EXACT_KERNELS) {
    const current = tf.getKernel(config.kernelName, CPU_BACKEND);
    if (current == null || current.kernelFunc === config.kernelFunc) continue;
    originalKernels.set(config.kernelName, current);
    tf.unregisterKernel(config.kernelName, CPU_BACKEND);
    tf.registerKernel(config);
    replaced.push(config.kernelName);
  }
  return replaced;
}

/** Restores the stock kernels registerCpuExactKernels() replaced (for comparing the two). */
export function unregisterCpuExactKernels(): string[] {
  const restored: string[] = [];
  for (const [kernelName, original] of originalKernels) {
    const current = tf.getKernel(kernelName, CPU_BACKEND);
    if (current != null && CPU_EXACT_KERNELS.some((c) => c.kernelFunc === current.kernelFunc)) {
      tf.unregisterKernel(kernelName, CPU_BACKEND);
      tf.registerKernel(original);
      restored.push(kernelName);
    }
  }
  originalKernels.clear();
  return restored;
}
