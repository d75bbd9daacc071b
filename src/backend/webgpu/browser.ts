/**
 * The `webgpu` backend in a browser: the page's own `navigator.gpu`, no Dawn. tfjs-backend-webgpu is imported
 * here with a plain dynamic import, so a bundler puts it in the bundle (or a chunk of its own) and a page that
 * never asks for WebGPU never evaluates it. Nothing here touches a Node module.
 */
import * as tf from '@tensorflow/tfjs';
import { POWER_PREFERENCE, summarizeAdapter, type AdapterSummary, type DawnAdapter } from './summary.js';
import { trackWebGPUPool } from './pool.js';
import { registerWebGPUTrainingKernels } from './register.js';

interface NavigatorGpu {
  requestAdapter(options?: { powerPreference?: 'low-power' | 'high-performance' }): Promise<DawnAdapter | null>;
}

export type BrowserAdapterSearch = { found: true; adapter: AdapterSummary } | { found: false; reason: string };

/** Asks the browser for the adapter tfjs-backend-webgpu will ask for; or says why there is none. */
export async function findBrowserWebGPUAdapter(): Promise<BrowserAdapterSearch> {
  const gpu = (globalThis as { navigator?: { gpu?: NavigatorGpu } }).navigator?.gpu;
  if (!gpu) return { found: false, reason: 'this browser has no navigator.gpu (WebGPU off, unsupported, or not a secure context)' };
  let adapter: DawnAdapter | null;
  try {
    adapter = await gpu.requestAdapter({ powerPreference: POWER_PREFERENCE });
  } catch (error) {
    return { found: false, reason: `navigator.gpu.requestAdapter() failed: ${error instanceof Error ? error.message : String(error)}` };
  }
  if (!adapter) return { found: false, reason: 'navigator.gpu.requestAdapter() returned no adapter (GPU blocked or unavailable)' };
  return { found: true, adapter: summarizeAdapter(adapter) };
}

/** Loads tfjs-backend-webgpu (it registers 'webgpu' when navigator.gpu exists) and makes it tfjs's backend. */
export async function activateBrowserWebGPU(search?: BrowserAdapterSearch): Promise<AdapterSummary> {
  const found = search ?? (await findBrowserWebGPUAdapter());
  if (!found.found) throw new Error(`backend 'webgpu': ${found.reason}`);
  await import('@tensorflow/tfjs-backend-webgpu');
  registerWebGPUTrainingKernels();
  if (tf.findBackendFactory('webgpu') == null) throw new Error(`backend 'webgpu': @tensorflow/tfjs-backend-webgpu registered no backend`);
  if (!(await tf.setBackend('webgpu'))) throw new Error(`backend 'webgpu' failed to initialise on adapter "${found.adapter.name}"`);
  await tf.ready();
  trackWebGPUPool(tf.backend());
  return found.adapter;
}
