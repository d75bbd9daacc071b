import * as tf from '@tensorflow/tfjs';
import { afterAll, describe, expect, it } from 'vitest';
import { initBackend } from '../src/backend/index.js';
import { batchNormBackward, batchStats, type TrainingNorm } from '../src/norm/batch-norm.js';

afterAll(async () => {
  await initBackend('cpu');
});

/** Per-channel offset plus hash noise uniform in (−scale, scale): deterministic and fast at 51M values. */
function fill(size: number, channels: number, seed: number, offset: (c: number) => number, scale: number): Float32Array {
  const out = new Float32Array(size);
  const offsets = Float64Array.from({ length: channels }, (_, c) => offset(c));
  let s = seed >>> 0;
  for (let i = 0, c = 0; i < size; i++) {
    s = (Math.imul(s ^ (s >>> 15), 0x2c1b3c6d) + 0x6d2b79f5) >>> 0;
    out[i] = offsets[c]! + ((s / 2 ** 32) * 2 - 1) * scale;
    if (++c === channels) c = 0;
  }
  return out;
}

/** max over channels of |got − exact| / |exact|. */
function worstRelative(got: ArrayLike<number>, exact: ArrayLike<number>): number {
  let worst = 0;
  for (let i = 0; i < exact.length; i++) worst = Math.max(worst, Math.abs(got[i]! - exact[i]!) / Math.abs(exact[i]!));
  return worst;
}

describe('batch norm at scale on wasm: DenseNet-201 stem at 224², batch 64 (802,816 values per channel)', () => {
  it('mean, variance, Σdy and Σdy·(x − μ) within 1e-6 of float64, per channel', async () => {
    await initBackend('wasm');
    const shape = [64, 112, 112, 64];
    const c = 64;
    const size = shape.reduce((a, b) => a * b, 1);
    // BN inputs with |μ| up to 2.5σ, and gradients with a mean of 1–3% of their spread.
    const xv = fill(size, c, 1, (j) => 0.5 + (j % 9) * 0.25, 1);
    const dyv = fill(size, c, 2, (j) => 0.01 + (j % 3) * 0.01, 0.1);

    let mean = new Float32Array();
    let variance = new Float32Array();
    const x = tf.tensor4d(xv, shape as [number, number, number, number]);
    const dy = tf.tensor4d(dyv, shape as [number, number, number, number]);
    const gamma = tf.ones([c]) as tf.Tensor1D;
    const beta = tf.zeros([c]) as tf.Tensor1D;
    const norm: TrainingNorm = {
      gamma,
      beta,
      record: (m, v) => {
        mean = Float32Array.from(m.dataSync());
        variance = Float32Array.from(v.dataSync());
      },
    };
    const stats = batchStats(x, norm);
    const invStd = Float32Array.from(stats.invStd.dataSync());
    const storedMean = Float32Array.from(stats.mean.dataSync());
    const grads = batchNormBackward(dy, x, gamma, stats);
    grads.dx.dispose();
    const dBeta = Float32Array.from(grads.dBeta.dataSync());
    const dGamma = Float32Array.from(grads.dGamma.dataSync());
    tf.dispose([x, dy, gamma, beta, stats.mean, stats.invStd, grads.dGamma, grads.dBeta]);

    // float64 in JavaScript: two passes (mean, then centred sums), per channel.
    const m = size / c;
    const exactMean = new Float64Array(c);
    for (let i = 0, j = 0; i < size; i++) {
      exactMean[j]! += xv[i]!;
      if (++j === c) j = 0;
    }
    for (let j = 0; j < c; j++) exactMean[j]! /= m;
    const exactVar = new Float64Array(c);
    const exactSumDy = new Float64Array(c);
    // dγ = r·Σdy·(x − μ) with the μ and r the forward stored (float32): what the backward must compute.
    const exactSumDyCentered = new Float64Array(c);
    for (let i = 0, j = 0; i < size; i++) {
      const d = xv[i]! - exactMean[j]!;
      exactVar[j]! += d * d;
      exactSumDy[j]! += dyv[i]!;
      exactSumDyCentered[j]! += dyv[i]! * (xv[i]! - storedMean[j]!);
      if (++j === c) j = 0;
    }
    for (let j = 0; j < c; j++) exactVar[j]! /= m;
    const exactDGamma = exactSumDyCentered.map((v, j) => v * invStd[j]!);

    const errors = {
      mean: worstRelative(mean, exactMean),
      variance: worstRelative(variance, exactVar),
      sumDy: worstRelative(dBeta, exactSumDy),
      sumDyCentered: worstRelative(dGamma, exactDGamma),
    };
    console.log(`BN at [${shape.join(', ')}] on wasm, worst per-channel relative error: ${JSON.stringify(errors)}`);
    for (const [name, error] of Object.entries(errors)) expect(error, name).toBeLessThanOrEqual(1e-6);
  }, 120_000);
});
