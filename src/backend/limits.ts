/**
 * What a backend can hold, and which shape-only backend measures its memory exactly: the facts a check
 * needs before work starts (data-parallel workers' memory), kept here so that code above the backends never
 * compares backend names.
 */

/** tfjs-backend-wasm's heap is a 32-bit WebAssembly memory: at most 4 GiB, per instance (each worker has one). */
export const WASM_HEAP_LIMIT_BYTES = 4 * 2 ** 30;

/** The most one tfjs instance's backend can hold, or null where only the machine limits it. */
export function heapLimitBytes(backend: string): number | null {
  return backend === 'wasm' || backend === 'meta-wasm' ? WASM_HEAP_LIMIT_BYTES : null;
}

/** The meta flavour that mirrors a backend's buffer aliasing: meta-wasm for wasm, meta for the others. */
export function metaFlavorFor(backend: string): 'meta' | 'meta-wasm' {
  return backend === 'wasm' || backend === 'meta-wasm' ? 'meta-wasm' : 'meta';
}

/** Whether a backend only plans memory (computes no values): meta and meta-wasm. */
export function isShapeOnly(backend: string): boolean {
  return backend.startsWith('meta');
}
