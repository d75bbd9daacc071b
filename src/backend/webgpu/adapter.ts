/**
 * Dawn (the `webgpu` npm package, prebuilt `dawn.node`) as Node's WebGPU: what its adapter is, and the
 * browser globals tfjs-backend-webgpu expects (`navigator.gpu`, `GPUBufferUsage`, `GPUMapMode`, …), which
 * Node does not have. Loaded only when the webgpu backend is asked for: the packages are optional and
 * `dawn.node` is 20 MB of native code.
 */
import { createRequire } from 'node:module';
import { pathToFileURL } from 'node:url';

/** The optional packages the backend needs, pinned as package.json pins them. */
export const WEBGPU_PACKAGES = ['webgpu@0.6.2', '@tensorflow/tfjs-backend-webgpu@4.22.0'] as const;

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

/** The slice of Dawn's GPU/GPUAdapter this module reads (typed here so the optional package is not needed to compile). */
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
export interface DawnGpu {
  requestAdapter(options?: { powerPreference?: 'low-power' | 'high-performance' }): Promise<DawnAdapter | null>;
}
interface DawnModule {
  create(flags: string[]): DawnGpu;
  globals: Record<string, unknown>;
}

/** CPU adapters that do not call themselves fallback adapters (Dawn marks only some). */
const SOFTWARE_NAMES = /llvmpipe|lavapipe|softpipe|swiftshader|warp|microsoft basic render/i;

export function summarizeAdapter(adapter: DawnAdapter): AdapterSummary {
  const info = adapter.info ?? {};
  const vendor = info.vendor ?? '';
  const architecture = info.architecture ?? '';
  const name = info.description || info.device || [vendor, architecture].filter(Boolean).join(' ') || 'unnamed adapter';
  const software = Boolean(info.isFallbackAdapter ?? adapter.isFallbackAdapter) || SOFTWARE_NAMES.test(`${name} ${vendor} ${info.device ?? ''}`);
  return { name, vendor, architecture, software, ...(adapter.limits ? { limits: adapter.limits } : {}) };
}

/** tfjs-backend-webgpu asks for this adapter; the one we describe must be the same. */
export const POWER_PREFERENCE = 'high-performance' as const;

/**
 * Where the optional packages are, without loading them; or which one is missing. Resolved from this
 * package, so a user's own install of them counts.
 */
export function resolveWebGPUPackages(): { webgpu: string; tfjsWebgpu: string } | { missing: string } {
  const require = createRequire(import.meta.url);
  const paths: string[] = [];
  for (const spec of WEBGPU_PACKAGES) {
    const name = spec.slice(0, spec.lastIndexOf('@'));
    try {
      paths.push(require.resolve(name));
    } catch {
      return { missing: name };
    }
  }
  return { webgpu: paths[0], tfjsWebgpu: paths[1] };
}

let dawn: DawnGpu | undefined;

/**
 * Creates Dawn's GPU once and installs it as `navigator.gpu` with Dawn's WebGPU classes and constants as
 * globals, as tfjs-backend-webgpu reads them. Node ≥ 21 has a `navigator` of its own: `gpu` is added to it.
 */
export async function installDawn(webgpuPath: string): Promise<DawnGpu> {
  if (dawn) return dawn;
  const module = (await import(pathToFileURL(webgpuPath).href)) as DawnModule;
  for (const [name, value] of Object.entries(module.globals)) {
    if (!(name in globalThis)) Object.defineProperty(globalThis, name, { value, configurable: true, writable: true });
  }
  const gpu = module.create([]);
  const host = globalThis as { navigator?: object };
  if (host.navigator === undefined) {
    Object.defineProperty(globalThis, 'navigator', { value: {}, configurable: true, writable: true });
  }
  Object.defineProperty(host.navigator as object, 'gpu', { value: gpu, configurable: true, writable: true });
  dawn = gpu;
  return gpu;
}
