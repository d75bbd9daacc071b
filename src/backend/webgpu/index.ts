/**
 * The `webgpu` backend: tfjs-backend-webgpu on Dawn's WebGPU in Node (a real GPU through Vulkan, Metal or
 * Direct3D 12; or Mesa's software Vulkan adapter, correct but slow). Loaded by src/backend/index.ts through
 * a dynamic import, so neither package is touched unless this backend is asked for (or `auto` looks for a GPU).
 */
import * as tf from '@tensorflow/tfjs';
import { pathToFileURL } from 'node:url';
import { installDawn, type AdapterSummary } from './adapter.js';
import { findWebGPUAdapter, type AdapterSearch } from './find.js';
import { trackWebGPUPool } from './pool.js';
import { registerWebGPUTrainingKernels } from './register.js';

export type { AdapterSummary } from './adapter.js';
export { findWebGPUAdapter, type AdapterSearch } from './find.js';
export { webgpuPoolPeakBytes } from './pool.js';
export { registerWebGPUTrainingKernels, unregisterWebGPUTrainingKernels, WEBGPU_TRAINING_KERNELS } from './register.js';

/** The adapter tfjs's webgpu backend runs on, set once it is active. */
let active: AdapterSummary | undefined;

/** 'adapter "llvmpipe: Mesa 25.0.7 (LLVM 15.0.6)" (mesa; software: correct but slow)' — for the backend log line. */
export function describeAdapter(adapter: AdapterSummary): string {
  const kind = adapter.software ? 'software: correct but slow' : 'hardware';
  return `adapter "${adapter.name}" (${adapter.vendor ? `${adapter.vendor}; ` : ''}${kind})`;
}

/**
 * Installs Dawn as `navigator.gpu`, loads tfjs-backend-webgpu (which registers the 'webgpu' backend when it
 * finds `navigator.gpu`) and makes it tfjs's backend. `search` is findWebGPUAdapter's answer; without an
 * adapter this throws an Error whose one line says what is missing and how to get it.
 */
export async function activateWebGPU(search?: AdapterSearch): Promise<AdapterSummary> {
  const found = search ?? (await findWebGPUAdapter());
  if (!found.found) throw new Error(`backend 'webgpu': ${found.missing}`);
  if (active && tf.getBackend() === 'webgpu') return active;
  await installDawn(found.webgpuPath);
  await import(pathToFileURL(found.tfjsWebgpuPath).href);
  // Our tiled training kernels replace tfjs-webgpu's (./register.ts); before the backend starts, so the first step uses them.
  registerWebGPUTrainingKernels();
  if (tf.findBackendFactory('webgpu') == null) {
    throw new Error(`backend 'webgpu': @tensorflow/tfjs-backend-webgpu registered no backend (was it imported before Dawn's navigator.gpu was set up?)`);
  }
  if (!(await tf.setBackend('webgpu'))) throw new Error(`backend 'webgpu' failed to initialise on ${describeAdapter(found.adapter)}`);
  await tf.ready();
  trackWebGPUPool(tf.backend());
  active = found.adapter;
  return active;
}
