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

export { summarizeAdapter, POWER_PREFERENCE, type AdapterSummary, type DawnAdapter } from './summary.js';
import type { DawnAdapter } from './summary.js';

export interface DawnGpu {
  requestAdapter(options?: { powerPreference?: 'low-power' | 'high-performance' }): Promise<DawnAdapter | null>;
}
interface DawnModule {
  create(flags: string[]): DawnGpu;
  globals: Record<string, unknown>;
}

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
