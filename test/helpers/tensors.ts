import * as tf from '@tensorflow/tfjs';

/** max |a − b| / max(max |b|, floor): the relative error of a tensor against a reference. */
export function relativeError(a: tf.Tensor | ArrayLike<number>, b: tf.Tensor | ArrayLike<number>, floor = 1e-12): number {
  const av = a instanceof tf.Tensor ? a.dataSync() : a;
  const bv = b instanceof tf.Tensor ? b.dataSync() : b;
  if (av.length !== bv.length) throw new Error(`length mismatch ${av.length} vs ${bv.length}`);
  let diff = 0;
  let scale = 0;
  for (let i = 0; i < av.length; i++) {
    diff = Math.max(diff, Math.abs(av[i] - bv[i]));
    scale = Math.max(scale, Math.abs(bv[i]));
  }
  return diff / Math.max(scale, floor);
}

/**
 * n deterministic float32 values in [lo, hi): a 32-bit linear congruential generator from `seed`, so every
 * backend, kernel and run sees the same inputs.
 */
export function uniformValues(n: number, seed: number, lo: number, hi: number): Float32Array {
  const out = new Float32Array(n);
  let s = seed >>> 0;
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    out[i] = lo + ((hi - lo) * s) / 2 ** 32;
  }
  return out;
}

/** Snapshot of values (survives disposal of the tensors). */
export function values(t: tf.Tensor): Float32Array {
  return Float32Array.from(t.dataSync());
}

export function maxAbs(v: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < v.length; i++) m = Math.max(m, Math.abs(v[i]));
  return m;
}

/**
 * The relative error of each gradient, except that the stem BN's γ and β are measured against the model's
 * largest gradient. Every consumer of the stem is another BN, so the loss is invariant to scaling the stem's
 * (γ, β) jointly (γ·dγ + β·dβ = 0): both are sums over the whole stem output that cancel almost exactly, so
 * their float32 error is set by the size of the terms, not of the result.
 */
export function gradientErrors(actual: Map<string, ArrayLike<number>>, reference: Map<string, ArrayLike<number>>): Map<string, number> {
  const stemScale = Math.max(...[...reference.values()].map(maxAbs));
  const errors = new Map<string, number>();
  for (const [name, ref] of reference) {
    const got = actual.get(name);
    if (!got) throw new Error(`no gradient for ${name}`);
    errors.set(name, relativeError(got, ref, name.startsWith('stem/norm0/') ? stemScale : 1e-12));
  }
  return errors;
}
