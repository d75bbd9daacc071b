/**
 * The workers' sharded SGD update (step/sharded-sgd.ts) for two workers on tfjs-backend-wasm's heap: sgd.wat,
 * four elements per SIMD register, the same float32 operations in the same order as the Math.fround loop
 * it replaces (≈ 7 ns an element in JavaScript, where each rounding is a conversion). The weights are read
 * where the backend keeps them; the two partial gradients and the momentum pass through a small scratch on
 * the heap, in chunks, and the new weights come back out.
 */
import { SGD_WASM } from './sgd-wasm.js';
import { heapModule, type EmscriptenWasm } from '../heap-module.js';

interface SgdExports {
  sgdTwo(p0: number, p1: number, w: number, a: number, out: number, n: number, m: number, wd: number, c: number, flags: number): void;
}

const exportsFor = heapModule<SgdExports>(SGD_WASM);

/** Elements per pass through the scratch (four arrays of them: 1 MiB of heap). */
export const SGD_CHUNK = 65_536;

/** The update's float32 constants: momentum, weight decay, −lr, and which terms apply. */
export interface SgdConstants {
  m: number;
  wd: number;
  c: number;
  nesterov: boolean;
  decay: boolean;
}

/**
 * out ← the new weights from w, the gradient p0 + p1 and the momentum a (updated in place), as sgd.wat
 * computes them. `w` must be a view of this wasm heap (a tensor's values in place); the others may be
 * anywhere. Returns false, doing nothing, when `w` is not on the heap.
 */
export function wasmSgdTwo(wasm: EmscriptenWasm, p0: Float32Array, p1: Float32Array, w: Float32Array, a: Float32Array, out: Float32Array, k: SgdConstants): boolean {
  const memory = wasm.asm.memory;
  if (w.buffer !== memory.buffer) return false;
  const n = w.length;
  // Taken before malloc: a growing heap detaches w's view (its offset stays valid).
  const wAt = w.byteOffset;
  const chunk = Math.min(SGD_CHUNK, n);
  const scratch = wasm._malloc(16 * chunk) >>> 0;
  if (scratch === 0) throw new Error('sharded SGD: out of memory on the wasm heap for its 1 MiB scratch');
  try {
    const sgd = exportsFor(wasm);
    const heap = new Float32Array(memory.buffer);
    const [g0, g1, acc, next] = [0, 1, 2, 3].map((k) => (scratch >>> 2) + k * chunk) as [number, number, number, number];
    const flags = (k.nesterov ? 1 : 0) | (k.decay ? 2 : 0);
    for (let s = 0; s < n; s += chunk) {
      const len = Math.min(chunk, n - s);
      heap.set(p0.subarray(s, s + len), g0);
      heap.set(p1.subarray(s, s + len), g1);
      heap.set(a.subarray(s, s + len), acc);
      sgd.sgdTwo(4 * g0, 4 * g1, wAt + 4 * s, 4 * acc, 4 * next, len, k.m, k.wd, k.c, flags);
      a.set(heap.subarray(acc, acc + len), s);
      out.set(heap.subarray(next, next + len), s);
    }
  } finally {
    wasm._free(scratch);
  }
  return true;
}
