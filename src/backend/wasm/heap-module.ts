/**
 * Our own WebAssembly modules (channel sums, the GEMM builds, the exact GEMM) work in place on
 * tfjs-backend-wasm's heap: each imports the backend's memory. This compiles a module once, from the base64
 * bytes its generated .ts holds, and instantiates it once per memory (a re-created backend gets a new one).
 */

/** A WebAssembly.Memory (the project compiles without the DOM typings that declare it). */
export interface WasmMemory {
  readonly buffer: ArrayBuffer;
}

/** The parts of tfjs-backend-wasm's Emscripten module our kernels use. */
export interface EmscriptenWasm {
  asm: { memory: WasmMemory };
  _malloc(bytes: number): number;
  _free(pointer: number): void;
}

/** The WebAssembly API used here, as Node and browsers provide it. */
const WebAssemblyApi = (globalThis as unknown as {
  WebAssembly: {
    Module: new (bytes: Uint8Array) => object;
    Instance: new (module: object, imports: object) => { exports: unknown };
  };
}).WebAssembly;

/** atob, not Node's Buffer: the modules also run in browsers (both have atob). */
function base64Bytes(text: string): Uint8Array {
  const binary = (globalThis as unknown as { atob(data: string): string }).atob(text);
  const bytes = new Uint8Array(binary.length);
  for (let i = 0; i < binary.length; i++) bytes[i] = binary.charCodeAt(i);
  return bytes;
}

/**
 * The exports of the module in `base64` instantiated on `wasm`'s memory. Compiling is deferred to first use
 * and throws (CompileError) where the engine lacks a feature the module uses (relaxed SIMD).
 */
export function heapModule<E>(base64: string): (wasm: EmscriptenWasm) => E {
  let compiled: object | null = null;
  const instances = new WeakMap<WasmMemory, E>();
  return (wasm) => {
    const memory = wasm.asm.memory;
    let found = instances.get(memory);
    if (!found) {
      compiled ??= new WebAssemblyApi.Module(base64Bytes(base64));
      found = new WebAssemblyApi.Instance(compiled, { env: { memory } }).exports as E;
      instances.set(memory, found);
    }
    return found;
  };
}
