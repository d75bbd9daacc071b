/**
 * The float64-accumulating GEMM (exact-gemm.wat) instantiated on tfjs-backend-wasm's memory, and the
 * drivers the `exact` kernels share: a product C = A·B rounded once, and a "patch" product whose left
 * operand is gathered a block of rows at a time (convolutions as implicit GEMMs). Every sum over K — over
 * channels, filter taps and K-chunks alike — stays in one float64 accumulator until `round`.
 */
import { EXACT_GEMM_WASM } from './exact-gemm-wasm.js';
import { heapModule, type EmscriptenWasm } from '../heap-module.js';
import type { WasmBackendInternals } from '../internals.js';

interface ExactGemmExports {
  gemm(a: number, aRow: number, aK: number, b: number, ldb: number, c: number, ldc: number, m: number, n: number, k: number): void;
  round(src: number, dst: number, count: number): void;
  promote(src: number, dst: number, count: number): void;
  promoteRows(src: number, srcRow: number, dst: number, dstRow: number, rows: number, cols: number): void;
}

const exportsFor = heapModule<ExactGemmExports>(EXACT_GEMM_WASM);

/** K is split into chunks this long: a chunk of a transposed A (one cache line per k) stays in L2. */
const K_CHUNK = 256;
/** Rows of C per block of a plain product, and positions per gathered block of a convolution. */
export const ROW_BLOCK = 128;

/**
 * The exact GEMM on one backend's heap. Owns scratch allocated with the heap's malloc — not tensors: tfjs
 * never sees them, and dispose() frees them. Every operand reaches the GEMM widened to float64 (exact), so
 * its inner loop is loads, multiplies and adds. Offsets and strides are in bytes.
 */
export class ExactGemm {
  private readonly exports: ExactGemmExports;
  private readonly wasm: EmscriptenWasm & { HEAPU8: Uint8Array };
  private readonly blocks: number[] = [];

  constructor(backend: WasmBackendInternals) {
    this.wasm = backend.wasm as unknown as EmscriptenWasm & { HEAPU8: Uint8Array };
    this.exports = exportsFor(this.wasm);
  }

  /** `bytes` of heap scratch, 8-byte aligned (malloc's), freed by dispose(). */
  alloc(bytes: number): number {
    // Emscripten returns addresses as signed 32-bit numbers: those above 2 GiB come back negative.
    const pointer = this.wasm._malloc(Math.max(16, bytes)) >>> 0;
    if (pointer === 0) throw new Error(`exact kernels: out of memory on the wasm heap for ${bytes} bytes of scratch`);
    this.blocks.push(pointer);
    return pointer;
  }

  /** Frees one block from alloc() early. */
  free(pointer: number): void {
    const at = this.blocks.indexOf(pointer);
    if (at >= 0) {
      this.blocks.splice(at, 1);
      this.wasm._free(pointer);
    }
  }

  dispose(): void {
    for (const p of this.blocks) this.wasm._free(p);
    this.blocks.length = 0;
  }

  /** Fresh views of the heap (re-take after any allocation: a growing heap detaches earlier views). */
  f32(): Float32Array {
    return new Float32Array(this.wasm.asm.memory.buffer);
  }

  f64(): Float64Array {
    return new Float64Array(this.wasm.asm.memory.buffer);
  }

  zero(c: number, count: number): void {
    new Float64Array(this.wasm.asm.memory.buffer, c, count).fill(0);
  }

  /** C[m, n] += A·B, all float64 (layouts in exact-gemm.wat). K is chunked. */
  gemm(a: number, aRow: number, aK: number, b: number, ldb: number, c: number, ldc: number, m: number, n: number, k: number): void {
    for (let k0 = 0; k0 < k; k0 += K_CHUNK) {
      this.exports.gemm(a + k0 * aK, aRow, aK, b + k0 * ldb, ldb, c, ldc, m, n, Math.min(K_CHUNK, k - k0));
    }
  }

  /** float32 → float64 for `rows` rows of `cols` values. */
  promoteRows(src: number, srcRow: number, dst: number, dstRow: number, rows: number, cols: number): void {
    this.exports.promoteRows(src, srcRow, dst, dstRow, rows, cols);
  }

  /** float64 → float32, rounding to nearest. */
  round(src: number, dst: number, count: number): void {
    this.exports.round(src, dst, count);
  }

  /**
   * out[m, n] (float32) = op(A)·B, with A float32 [m, k] (or [k, m] when `transposeA`) and B already
   * float64 [k, n]: blocks of ROW_BLOCK rows of A widened into scratch, summed in float64, rounded once.
   */
  product(a: number, transposeA: boolean, b64: number, out: number, m: number, n: number, k: number): void {
    const rows = Math.min(ROW_BLOCK, m);
    const a64 = this.alloc(8 * rows * k);
    const c = this.alloc(8 * rows * n);
    for (let i0 = 0; i0 < m; i0 += rows) {
      const mb = Math.min(rows, m - i0);
      if (transposeA) {
        this.promoteRows(a + 4 * i0, 4 * m, a64, 8 * mb, k, mb);
      } else {
        this.promoteRows(a + 4 * i0 * k, 4 * k, a64, 8 * k, mb, k);
      }
      this.zero(c, mb * n);
      this.gemm(a64, transposeA ? 8 : 8 * k, transposeA ? 8 * mb : 8, b64, 8 * n, c, 8 * n, mb, n, k);
      this.round(c, out + 4 * i0 * n, mb * n);
    }
    this.free(c);
    this.free(a64);
  }

  /** A float32 [rows, cols] matrix widened into new scratch (row-major float64). */
  widened(src: number, rows: number, cols: number): number {
    const dst = this.alloc(8 * rows * cols);
    this.promoteRows(src, 4 * cols, dst, 8 * cols, rows, cols);
    return dst;
  }
}
