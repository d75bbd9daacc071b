/**
 * The cpu backend's exactly summed kernels (src/backend/cpu): every output must be the float64 value of its
 * sum of float32 products rounded once to float32 — within one unit in the last place, which a float32
 * running sum over hundreds of terms does not meet (asserted on the stock kernels, so the test can fail).
 */
import * as tf from '@tensorflow/tfjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { registerCpuExactKernels, unregisterCpuExactKernels } from '../src/backend/cpu/index.js';
import { uniformValues } from './helpers/tensors.js';

tf.env().set('PROD', true);

type Shape4 = [number, number, number, number];
type Pad = 'same' | 'valid';

function values(n: number, seed: number): Float32Array {
  return uniformValues(n, seed, -1, 1);
}
const size = (shape: number[]) => shape.reduce((a, b) => a * b, 1);

/** Distance in float32 units in the last place between a float32 result and the exact value. */
function ulps(actual: number, exact: number): number {
  const rounded = Math.fround(exact);
  if (actual === rounded) return 0;
  const spacing = Math.abs(Math.fround(rounded * (1 + 2 ** -23)) - rounded) || 2 ** -149;
  return Math.abs(actual - exact) / spacing;
}

/** Largest ulps() over a result against its float64 reference, and the share of outputs exactly rounded. */
function ulpStats(actual: Float32Array, exact: Float64Array): { max: number; exactShare: number } {
  expect(actual.length).toBe(exact.length);
  let max = 0;
  let same = 0;
  for (let i = 0; i < exact.length; i++) {
    const u = ulps(actual[i]!, exact[i]!);
    max = Math.max(max, u);
    if (u === 0) same++;
  }
  return { max, exactShare: same / exact.length };
}

interface Geometry { n: number; h: number; w: number; cin: number; kh: number; kw: number; cout: number; stride: number; pad: Pad; oh: number; ow: number; top: number; left: number }
function geometry(xShape: Shape4, fShape: Shape4, stride: number, pad: Pad): Geometry {
  const [n, h, w, cin] = xShape;
  const [kh, kw, , cout] = fShape;
  const oh = pad === 'same' ? Math.ceil(h / stride) : Math.ceil((h - kh + 1) / stride);
  const ow = pad === 'same' ? Math.ceil(w / stride) : Math.ceil((w - kw + 1) / stride);
  const top = pad === 'same' ? Math.floor(Math.max(0, (oh - 1) * stride + kh - h) / 2) : 0;
  const left = pad === 'same' ? Math.floor(Math.max(0, (ow - 1) * stride + kw - w) / 2) : 0;
  return { n, h, w, cin, kh, kw, cout, stride, pad, oh, ow, top, left };
}

/** Visits every (input index, filter index, output index) triple of the convolution. */
function eachTerm(g: Geometry, visit: (xi: number, wi: number, yi: number) => void): void {
  for (let b = 0; b < g.n; b++) for (let r = 0; r < g.oh; r++) for (let q = 0; q < g.ow; q++) {
    for (let i = 0; i < g.kh; i++) for (let j = 0; j < g.kw; j++) {
      const hi = r * g.stride + i - g.top;
      const wi = q * g.stride + j - g.left;
      if (hi < 0 || hi >= g.h || wi < 0 || wi >= g.w) continue;
      for (let c = 0; c < g.cin; c++) for (let o = 0; o < g.cout; o++) {
        visit(((b * g.h + hi) * g.w + wi) * g.cin + c, ((i * g.kw + j) * g.cin + c) * g.cout + o, ((b * g.oh + r) * g.ow + q) * g.cout + o);
      }
    }
  }
}

/** y, dL/dx and dL/dW of L = Σ conv2d(x, W) ⊙ dy, in float64 from the definition. */
function reference(x: Float32Array, f: Float32Array, dy: Float32Array, g: Geometry): { y: Float64Array; dx: Float64Array; dw: Float64Array } {
  const y = new Float64Array(g.n * g.oh * g.ow * g.cout);
  const dx = new Float64Array(x.length);
  const dw = new Float64Array(f.length);
  eachTerm(g, (xi, wi, yi) => {
    y[yi] += x[xi]! * f[wi]!;
    dx[xi] += dy[yi]! * f[wi]!;
    dw[wi] += x[xi]! * dy[yi]!;
  });
  return { y, dx, dw };
}

function convOnBackend(x: Float32Array, f: Float32Array, dy: Float32Array, xShape: Shape4, fShape: Shape4, stride: number, pad: Pad) {
  return tf.tidy(() => {
    const xt = tf.tensor4d(x, xShape);
    const ft = tf.tensor4d(f, fShape);
    const y = tf.conv2d(xt, ft, stride, pad);
    const dyt = tf.tensor(dy, y.shape);
    const [dxt, dwt] = tf.grads((a: tf.Tensor, b: tf.Tensor) => tf.sum(tf.mul(tf.conv2d(a as tf.Tensor4D, b as tf.Tensor4D, stride, pad), dyt)))([xt, ft]);
    return { y: y.dataSync() as Float32Array, dx: dxt!.dataSync() as Float32Array, dw: dwt!.dataSync() as Float32Array };
  });
}

const CONVS: Array<[string, Shape4, Shape4, number, Pad]> = [
  ['3×3 same, DenseNet growth layer', [2, 7, 6, 64], [3, 3, 64, 8], 1, 'same'],
  ['1×1 bottleneck', [2, 5, 5, 96], [1, 1, 96, 16], 1, 'valid'],
  ['7×7 stride-2 stem, odd size', [1, 13, 11, 3], [7, 7, 3, 8], 2, 'same'],
  ['3×3 stride 2 valid', [2, 9, 8, 5], [3, 3, 5, 6], 2, 'valid'],
  ['1×1 stride 2 (a transition-like downsampling)', [1, 6, 7, 12], [1, 1, 12, 5], 2, 'same'],
];

describe('cpu exact kernels', () => {
  beforeAll(async () => {
    await tf.setBackend('cpu');
    registerCpuExactKernels();
  });
  afterAll(() => {
    registerCpuExactKernels();
  });

  it.each(CONVS)('conv2d %s: y, dx and dW are the float64 sums rounded once (≤ 1 ulp)', (_name, xShape, fShape, stride, pad) => {
    const x = values(size(xShape), 11);
    const f = values(size(fShape), 12);
    const g = geometry(xShape, fShape, stride, pad);
    const dy = values(g.n * g.oh * g.ow * g.cout, 13);
    const exact = reference(x, f, dy, g);
    const ours = convOnBackend(x, f, dy, xShape, fShape, stride, pad);
    for (const key of ['y', 'dx', 'dw'] as const) {
      const stats = ulpStats(ours[key], exact[key]);
      expect(stats.max, key).toBeLessThanOrEqual(1);
      expect(stats.exactShare, key).toBeGreaterThan(0.99);
    }
  });

  it('the stock forward, which adds each product into the float32 output, misses that bound on a long reduction', () => {
    const xShape: Shape4 = [2, 6, 6, 256];
    const fShape: Shape4 = [3, 3, 256, 4];
    const x = values(size(xShape), 21);
    const f = values(size(fShape), 22);
    const g = geometry(xShape, fShape, 1, 'same');
    const dy = values(g.n * g.oh * g.ow * g.cout, 23);
    const exact = reference(x, f, dy, g);
    const ours = convOnBackend(x, f, dy, xShape, fShape, 1, 'same');
    unregisterCpuExactKernels();
    const stockResult = convOnBackend(x, f, dy, xShape, fShape, 1, 'same');
    registerCpuExactKernels();
    expect(ulpStats(ours.y, exact.y).max).toBeLessThanOrEqual(1);
    expect(ulpStats(stockResult.y, exact.y).max).toBeGreaterThan(4);
  });

  it.each([
    [false, false], [true, false], [false, true], [true, true],
  ])('matMul transposeA=%s transposeB=%s with a broadcast batch: float64 sums rounded once', (ta, tb) => {
    const [batch, m, k, n] = [3, 5, 300, 7];
    const aShape = ta ? [batch, k, m] : [batch, m, k];
    const bShape = tb ? [n, k] : [k, n];
    const a = values(size(aShape), 31);
    const b = values(size(bShape), 32);
    const exact = new Float64Array(batch * m * n);
    for (let t = 0; t < batch; t++) for (let r = 0; r < m; r++) for (let j = 0; j < n; j++) {
      let s = 0;
      for (let i = 0; i < k; i++) s += a[t * m * k + (ta ? i * m + r : r * k + i)]! * b[tb ? j * k + i : i * n + j]!;
      exact[(t * m + r) * n + j] = s;
    }
    const y = tf.tidy(() => tf.matMul(tf.tensor(a, aShape), tf.tensor(b, bShape), ta, tb));
    expect(y.shape).toEqual([batch, m, n]);
    expect(ulpStats(y.dataSync() as Float32Array, exact).max).toBeLessThanOrEqual(1);
    y.dispose();
  });

  it('a Dense layer (fused product, bias, ReLU) rounds once after the bias', () => {
    const [m, k, n] = [4, 200, 6];
    const a = values(m * k, 41);
    const b = values(k * n, 42);
    const bias = values(n, 43);
    const y = tf.tidy(() => tf.fused.matMul({ a: tf.tensor2d(a, [m, k]), b: tf.tensor2d(b, [k, n]), bias: tf.tensor1d(bias), activation: 'relu' }));
    const exact = new Float64Array(m * n);
    for (let r = 0; r < m; r++) for (let j = 0; j < n; j++) {
      let s = bias[j]!;
      for (let i = 0; i < k; i++) s += a[r * k + i]! * b[i * n + j]!;
      exact[r * n + j] = Math.max(0, s);
    }
    expect(ulpStats(y.dataSync() as Float32Array, exact).max).toBeLessThanOrEqual(1);
    y.dispose();
  });

  it('leaves what it does not cover (dilations, int32) to the stock kernels, with their results', () => {
    const xShape: Shape4 = [1, 9, 9, 3];
    const fShape: Shape4 = [3, 3, 3, 2];
    const run = () => tf.tidy(() => tf.conv2d(tf.tensor4d(values(size(xShape), 51), xShape), tf.tensor4d(values(size(fShape), 52), fShape), 1, 'same', 'NHWC', 2).dataSync());
    const ours = run();
    unregisterCpuExactKernels();
    const stockResult = run();
    registerCpuExactKernels();
    expect(Array.from(ours)).toEqual(Array.from(stockResult));
    const ints = tf.tidy(() => tf.matMul(tf.tensor2d([1, 2, 3, 4], [2, 2], 'int32'), tf.tensor2d([5, 6, 7, 8], [2, 2], 'int32')).dataSync());
    expect(Array.from(ints)).toEqual([19, 22, 43, 50]);
  });
});
