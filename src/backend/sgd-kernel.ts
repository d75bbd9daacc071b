/**
 * The sharded SGD update's two-worker loop on the current backend's own memory where we have one (wasm:
 * ./wasm/sgd), or null, and step/sharded-sgd.ts runs its JavaScript loop — the same bits either way.
 */
import * as tf from '@tensorflow/tfjs';
import { backendTraits } from './traits.js';
import type { EmscriptenWasm } from './wasm/heap-module.js';
import { wasmSgdTwo, type SgdConstants } from './wasm/sgd/sgd.js';

export type { SgdConstants } from './wasm/sgd/sgd.js';

/** out ← new weights from w, p0 + p1 and the momentum a (in place); false where it could not (w not in place). */
export type SgdTwoKernel = (p0: Float32Array, p1: Float32Array, w: Float32Array, a: Float32Array, out: Float32Array, k: SgdConstants) => boolean;

export function sgdTwoKernel(): SgdTwoKernel | null {
  if (backendTraits().valuesInPlace !== 'wasm-heap') return null;
  const wasm = (tf.backend() as unknown as { wasm: EmscriptenWasm }).wasm;
  return (p0, p1, w, a, out, k) => wasmSgdTwo(wasm, p0, p1, w, a, out, k);
}
