/**
 * Which project kernels replace tfjs-backend-webgpu's, registered when the webgpu backend is activated
 * (./index.ts, ./browser.ts). The stock kernels are kept: restored by unregisterWebGPUTrainingKernels, the
 * fallback of reductions ours do not cover, and the baseline scripts/webgpu-kernels.ts times ours against.
 * Conv2DBackpropInput stays tfjs's: its conv_backprop_mm program is already an implicit GEMM on tfjs's
 * tiled matMul source, at the adapter's matMul speed (the table in docs/gpu.md).
 */
import * as tf from '@tensorflow/tfjs';
import { conv2DBackpropFilterConfig } from './kernels/conv2d-backprop-filter.js';
import { avgPoolGradConfig } from './kernels/avg-pool-grad.js';
import { maxPoolGradConfig } from './kernels/max-pool-grad.js';
import { meanConfig, sumConfig } from './kernels/channel-reduce.js';
import { addConfig, multiplyConfig, subConfig } from './kernels/binary-channel.js';
import { setStockKernel, WEBGPU_BACKEND } from './kernels/program.js';

/**
 * Tiled, single-pass or flat-indexed replacements for training kernels tfjs-webgpu runs far below the
 * adapter's speed (the binary element-wise ones: for the channel-broadcast and same-shape float32 calls only).
 */
export const WEBGPU_TRAINING_KERNELS: readonly tf.KernelConfig[] = [
  conv2DBackpropFilterConfig,
  maxPoolGradConfig,
  avgPoolGradConfig,
  sumConfig,
  meanConfig,
  multiplyConfig,
  addConfig,
  subConfig,
];

const stock = new Map<string, tf.KernelConfig>();

/** Replaces tfjs-webgpu's kernels by ours. Idempotent; returns the names replaced by this call. */
export function registerWebGPUTrainingKernels(): string[] {
  const replaced: string[] = [];
  for (const config of WEBGPU_TRAINING_KERNELS) {
    const current = tf.getKernel(config.kernelName, WEBGPU_BACKEND);
    if (current?.kernelFunc === config.kernelFunc) continue;
    if (current) {
      stock.set(config.kernelName, current);
      setStockKernel(config.kernelName, current.kernelFunc);
      tf.unregisterKernel(config.kernelName, WEBGPU_BACKEND);
    }
    tf.registerKernel(config);
    replaced.push(config.kernelName);
  }
  return replaced;
}

/** Puts tfjs-webgpu's own kernels back (`only`: just those named). Returns the names restored. */
export function unregisterWebGPUTrainingKernels(only?: readonly string[]): string[] {
  const restored: string[] = [];
  for (const config of WEBGPU_TRAINING_KERNELS) {
    if (only && !only.includes(config.kernelName)) continue;
    const original = stock.get(config.kernelName);
    if (tf.getKernel(config.kernelName, WEBGPU_BACKEND)?.kernelFunc !== config.kernelFunc) continue;
    tf.unregisterKernel(config.kernelName, WEBGPU_BACKEND);
    if (original) tf.registerKernel(original);
    stock.delete(config.kernelName);
    restored.push(config.kernelName);
  }
  return restored;
}
