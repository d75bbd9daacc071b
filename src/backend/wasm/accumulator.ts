import * as tf from '@tensorflow/tfjs';
import { heap, offsetOf, release, run, type TensorInfo, type WasmBackendInternals } from './internals.js';

/**
 * Running sum of equally shaped partial products, in the wasm Add kernel
 * (SIMD; a JS loop over the heap costs ~10% of a 256-row K-chunk's GEMM).
 */
export class Accumulator {
  private sum: TensorInfo | null = null;

  constructor(private readonly backend: WasmBackendInternals) {}

  /** Takes ownership of p. */
  add(p: TensorInfo): void {
    if (this.sum == null) {
      this.sum = p;
      return;
    }
    const next = run(this.backend, tf.Add, { a: this.sum, b: p });
    release(this.backend, this.sum, p);
    this.sum = next;
  }

  copyTo(dst: TensorInfo, dstOffset: number, srcOffset: number, length: number): void {
    if (this.sum == null) throw new Error('wasm-kernels: empty accumulation');
    const s = offsetOf(this.backend, this.sum) + srcOffset;
    heap(this.backend).copyWithin(offsetOf(this.backend, dst) + dstOffset, s, s + length);
  }

  dispose(): void {
    if (this.sum != null) release(this.backend, this.sum);
    this.sum = null;
  }
}
