/**
 * What a WebGPU adapter is, from what it says of itself: the same summary for Dawn's adapter in Node and a
 * browser's `navigator.gpu` adapter. No Node module here: the browser path (./browser.ts) uses it.
 */

/** What the backend reports about the adapter it runs on. */
export interface AdapterSummary {
  /** The driver's name for it (e.g. "NVIDIA H200", "llvmpipe (LLVM 19.1.7, 256 bits)"). */
  name: string;
  vendor: string;
  architecture: string;
  /** A CPU implementation (Mesa's llvmpipe, SwiftShader, WARP): correct but far slower than a GPU. */
  software: boolean;
  /** The adapter's limits that bound a tensor: the largest buffer, and the largest a shader may bind. */
  limits?: { maxBufferSize: number; maxStorageBufferBindingSize: number };
}

/** The slice of a GPUAdapter (Dawn's or a browser's) read here, typed here: the project compiles without DOM or Dawn typings. */
interface DawnAdapterInfo {
  vendor?: string;
  architecture?: string;
  device?: string;
  description?: string;
  isFallbackAdapter?: boolean;
}
export interface DawnAdapter {
  info?: DawnAdapterInfo;
  isFallbackAdapter?: boolean;
  limits?: { maxBufferSize: number; maxStorageBufferBindingSize: number };
}
/** CPU adapters that do not call themselves fallback adapters (Dawn marks only some). */
const SOFTWARE_NAMES = /llvmpipe|lavapipe|softpipe|swiftshader|warp|microsoft basic render/i;

export function summarizeAdapter(adapter: DawnAdapter): AdapterSummary {
  const info = adapter.info ?? {};
  const vendor = info.vendor ?? '';
  const architecture = info.architecture ?? '';
  const name = info.description || info.device || [vendor, architecture].filter(Boolean).join(' ') || 'unnamed adapter';
  const software = Boolean(info.isFallbackAdapter ?? adapter.isFallbackAdapter) || SOFTWARE_NAMES.test(`${name} ${vendor} ${info.device ?? ''}`);
  return { name, vendor, architecture, software, ...(adapter.limits ? { limits: { maxBufferSize: adapter.limits.maxBufferSize, maxStorageBufferBindingSize: adapter.limits.maxStorageBufferBindingSize } } : {}) };
}

/** tfjs-backend-webgpu asks for this adapter; the one we describe must be the same. */
export const POWER_PREFERENCE = 'high-performance' as const;

