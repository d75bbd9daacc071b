/**
 * The float32 error of each reduction a DenseNet training step makes on the wasm backend, op by op, against
 * a float64 computation in JavaScript on the op's own inputs; old path (tfjs's float32 reductions,
 * setChannelSumsPath('ops')) beside the current one; for filter gradients and 1×1 convolutions the XNNPACK
 * route beside the own GEMM's (src/backend/wasm/gemm/routes.ts). An error measurement, not a timing.
 *
 *   npx tsx scripts/measure-op-errors.ts
 *
 * Inputs are synthetic with DenseNet-like statistics: BN inputs with a per-channel mean of 0.5–1.5 σ
 * (conv outputs of ReLU features), gradients with a small per-channel mean. Errors: max over channels of
 * |got − exact| / max over channels |exact| (per-channel vectors), or relative L2 (filter gradients).
 */
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../src/backend/index.js';
import { batchNormBackward, batchStats, type TrainingNorm } from '../src/norm/batch-norm.js';
import { setChannelSumsPath } from '../src/norm/channel-sums.js';
import { conv2dBackpropFilter } from '../src/ops/kernels.js';
import { matMulTransposeA } from '../src/ops/matmul.js';
import { gemmBuild } from '../src/backend/wasm/gemm/gemm.js';
import { setGemmRoute, type GemmRoute } from '../src/backend/wasm/gemm/routes.js';

/** Deterministic float32 values: a per-channel offset plus a uniform(−√3, √3)·scale hash noise. */
function synth(shape: number[], seed: number, offset: (c: number) => number, scale = 1): Float32Array {
  const c = shape[shape.length - 1]!;
  const out = new Float32Array(shape.reduce((a, b) => a * b, 1));
  let s = (seed * 0x9e3779b9) >>> 0;
  for (let i = 0; i < out.length; i++) {
    s = (Math.imul(s ^ (s >>> 15), 0x2c1b3c6d) + 0x6d2b79f5) >>> 0;
    out[i] = offset(i % c) + ((s / 2 ** 32) * 2 - 1) * Math.sqrt(3) * scale;
  }
  return out;
}

function maxRel(got: ArrayLike<number>, exact: ArrayLike<number>): number {
  let d = 0;
  let s = 0;
  for (let i = 0; i < exact.length; i++) {
    d = Math.max(d, Math.abs(got[i]! - exact[i]!));
    s = Math.max(s, Math.abs(exact[i]!));
  }
  return d / s;
}

function relL2(got: ArrayLike<number>, exact: ArrayLike<number>): number {
  let d = 0;
  let s = 0;
  for (let i = 0; i < exact.length; i++) {
    d += (got[i]! - exact[i]!) ** 2;
    s += exact[i]! ** 2;
  }
  return Math.sqrt(d / s);
}

interface Exact {
  mean: Float64Array;
  variance: Float64Array;
  sumDy: Float64Array;
  sumDyCentered: Float64Array;
}

function exactSums(x: Float32Array, dy: Float32Array, c: number): Exact {
  const m = x.length / c;
  const mean = new Float64Array(c);
  for (let i = 0; i < x.length; i++) mean[i % c] += x[i]!;
  for (let j = 0; j < c; j++) mean[j]! /= m;
  const variance = new Float64Array(c);
  const sumDy = new Float64Array(c);
  const sumDyCentered = new Float64Array(c);
  // The backward centres on the mean its forward stored, a float32 value: Σdy·(x − fround(μ)) is its exact sum.
  const stored = Float64Array.from(mean, Math.fround);
  for (let i = 0; i < x.length; i++) {
    const j = i % c;
    const d = x[i]! - mean[j]!;
    variance[j]! += d * d;
    sumDy[j]! += dy[i]!;
    sumDyCentered[j]! += dy[i]! * (x[i]! - stored[j]!);
  }
  for (let j = 0; j < c; j++) variance[j]! /= m;
  return { mean, variance, sumDy, sumDyCentered };
}

const rows: string[] = [];
function row(op: string, shape: number[], old: number, now: number): void {
  rows.push(`| ${op} | [${shape.join(', ')}] | ${old.toExponential(1)} | ${now.toExponential(1)} |`);
}

/** BN statistics and the BN backward's sums through the production functions, old and current path. */
function measureBatchNorm(shape: number[]): void {
  const c = shape[shape.length - 1]!;
  const xv = synth(shape, 1, (j) => 0.5 + (j % 5) * 0.25);
  const dyv = synth(shape, 2, (j) => ((j % 3) - 1) * 0.02, 0.1);
  const exact = exactSums(xv, dyv, c);
  const x = tf.tensor(xv, shape);
  const dy = tf.tensor(dyv, shape);
  const gamma = tf.ones([c]) as tf.Tensor1D;
  const results: Record<string, Float32Array>[] = [];
  for (const path of ['ops', undefined] as const) {
    setChannelSumsPath(path);
    let mean = new Float32Array();
    let variance = new Float32Array();
    const norm: TrainingNorm = {
      gamma,
      beta: tf.zeros([c]) as tf.Tensor1D,
      record: (m, v) => {
        mean = Float32Array.from(m.dataSync());
        variance = Float32Array.from(v.dataSync());
      },
    };
    const stats = batchStats(x, norm);
    // The exact statistics (as float32) into the backward, so its sums are measured on their own.
    const exactStats = { mean: tf.tensor1d(Float32Array.from(exact.mean)), invStd: tf.ones([c]) as tf.Tensor1D };
    const grads = batchNormBackward(dy, x, gamma, exactStats);
    results.push({ mean, variance, sumDy: Float32Array.from(grads.dBeta.dataSync()), sumDyCentered: Float32Array.from(grads.dGamma.dataSync()) });
    tf.dispose([stats.mean, stats.invStd, exactStats.mean, exactStats.invStd, grads.dx, grads.dGamma, grads.dBeta, norm.beta]);
  }
  setChannelSumsPath(undefined);
  const [old, now] = results as [Record<string, Float32Array>, Record<string, Float32Array>];
  row('BN mean (tf.moments → channelMoments)', shape, maxRel(old['mean']!, exact.mean), maxRel(now['mean']!, exact.mean));
  row('BN variance', shape, maxRel(old['variance']!, exact.variance), maxRel(now['variance']!, exact.variance));
  row('BN backward Σdy (dβ)', shape, maxRel(old['sumDy']!, exact.sumDy), maxRel(now['sumDy']!, exact.sumDy));
  row('BN backward Σdy·(x−μ) (dγ; old: Σdy·x − μΣdy)', shape, maxRel(old['sumDyCentered']!, exact.sumDyCentered), maxRel(now['sumDyCentered']!, exact.sumDyCentered));
  tf.dispose([x, dy, gamma]);
}

/** Filter gradient of a k×k convolution (stride, 'same'-like padding) against float64. */
function measureFilterGrad(xShape: [number, number, number, number], k: number, cout: number, stride: number, pad: number): void {
  const [n, h, w, cin] = xShape;
  const oh = Math.floor((h + 2 * pad - k) / stride) + 1;
  const ow = Math.floor((w + 2 * pad - k) / stride) + 1;
  const xv = synth(xShape, 3, () => 0.5);
  const dyv = synth([n, oh, ow, cout], 4, () => 0, 0.1);
  const exact = new Float64Array(k * k * cin * cout);
  for (let b = 0; b < n; b++) {
    for (let i = 0; i < oh; i++) {
      for (let j = 0; j < ow; j++) {
        const dyBase = ((b * oh + i) * ow + j) * cout;
        for (let ki = 0; ki < k; ki++) {
          const hi = i * stride + ki - pad;
          if (hi < 0 || hi >= h) continue;
          for (let kj = 0; kj < k; kj++) {
            const wj = j * stride + kj - pad;
            if (wj < 0 || wj >= w) continue;
            const xBase = ((b * h + hi) * w + wj) * cin;
            const outBase = (ki * k + kj) * cin * cout;
            for (let ci = 0; ci < cin; ci++) {
              const xvv = xv[xBase + ci]!;
              const o = outBase + ci * cout;
              for (let co = 0; co < cout; co++) exact[o + co]! += xvv * dyv[dyBase + co]!;
            }
          }
        }
      }
    }
  }
  const run = (route: GemmRoute) => {
    const previous = setGemmRoute('filterGrad', route);
    try {
      return tf.tidy(() => {
        const x = tf.tensor4d(xv, xShape);
        const dy = tf.tensor4d(dyv, [n, oh, ow, cout]);
        if (k === 1 && stride === 1 && pad === 0) {
          return matMulTransposeA(tf.reshape(x, [n * h * w, cin]) as tf.Tensor2D, tf.reshape(dy, [n * h * w, cout]) as tf.Tensor2D).dataSync();
        }
        const padding = [[0, 0], [pad, pad], [pad, pad], [0, 0]] as [[number, number], [number, number], [number, number], [number, number]];
        return conv2dBackpropFilter(x, dy, [k, k, cin, cout], stride, padding).dataSync();
      });
    } finally {
      setGemmRoute('filterGrad', previous);
    }
  };
  const now = stride === 1 ? `own GEMM, ${gemmBuild()}` : 'XNNPACK route too (stride 2)';
  row(`conv ${k}×${k}/${stride} filter gradient (old: XNNPACK route; now: ${now}), rel. L2`, [...xShape, cout],
    relL2(run('xnnpack'), exact), relL2(run('gemm'), exact));
}

/** Forward 1×1 convolution (a [P, cin]·[cin, cout] product) against float64: XNNPACK against the own GEMM. */
function measureConv1x1(xShape: [number, number, number, number], cout: number): void {
  const [n, h, w, cin] = xShape;
  const p = n * h * w;
  const xv = synth(xShape, 6, () => 0.5);
  const wv = synth([cin, cout], 7, () => 0, 0.05);
  const exact = new Float64Array(p * cout);
  for (let r = 0; r < p; r++) {
    for (let ci = 0; ci < cin; ci++) {
      const a = xv[r * cin + ci]!;
      for (let co = 0; co < cout; co++) exact[r * cout + co]! += a * wv[ci * cout + co]!;
    }
  }
  const run = (route: GemmRoute) => {
    const previous = { conv: setGemmRoute('conv1x1', route), matMul: setGemmRoute('matMul', route) };
    try {
      return tf.tidy(() => tf.conv2d(tf.tensor4d(xv, xShape), tf.tensor4d(wv, [1, 1, cin, cout]), 1, 'valid').dataSync());
    } finally {
      setGemmRoute('conv1x1', previous.conv);
      setGemmRoute('matMul', previous.matMul);
    }
  };
  row(`conv 1×1 forward (old: XNNPACK; now: own GEMM, ${gemmBuild()}), rel. L2`, [...xShape, cout], relL2(run('xnnpack'), exact), relL2(run('gemm'), exact));
}

/** The head's global average pool (tf.mean over H, W) against float64. */
function measureHeadMean(shape: [number, number, number, number]): void {
  const [n, h, w, c] = shape;
  const xv = synth(shape, 5, () => 0.7);
  const exact = new Float64Array(n * c);
  for (let i = 0; i < xv.length; i++) exact[Math.floor(i / (h * w * c)) * c + (i % c)]! += xv[i]! / (h * w);
  const got = tf.tidy(() => tf.mean(tf.tensor4d(xv, shape), [1, 2]).dataSync());
  const e = maxRel(got, exact);
  row('head mean over H·W (unchanged)', shape, e, e);
}

await initBackend('wasm');
// DenseNet-121 at 96², batch 3: stem BN, a block-1 and a block-3 BN input; DenseNet-201's stem at 224², batch 64.
for (const shape of [[3, 48, 48, 64], [3, 24, 24, 256], [3, 6, 6, 1024], [8, 56, 56, 64], [64, 112, 112, 64]]) measureBatchNorm(shape);
measureFilterGrad([3, 24, 24, 128], 3, 32, 1, 1);
measureFilterGrad([8, 28, 28, 128], 3, 32, 1, 1);
measureFilterGrad([3, 96, 96, 3], 7, 64, 2, 3);
measureFilterGrad([3, 24, 24, 256], 1, 128, 1, 0);
measureFilterGrad([8, 56, 56, 256], 1, 128, 1, 0);
measureConv1x1([3, 24, 24, 256], 128);
measureConv1x1([8, 7, 7, 1024], 128);
measureHeadMean([3, 3, 3, 1024]);
measureHeadMean([8, 7, 7, 1024]);
console.log('| op (wasm) | shape | old error | current error |\n|---|---|---:|---:|');
console.log(rows.join('\n'));
