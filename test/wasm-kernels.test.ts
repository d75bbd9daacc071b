import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  registerWasmFastOverrides,
  registerWasmTrainingKernels,
  unregisterWasmFastOverrides,
} from '../src/backend/wasm/index.js';
import { matMulTransposeA, matMulTransposeB } from '../src/ops/matmul.js';
import { uniformValues } from './helpers/tensors.js';

// Only silences the cpu backend's "install tfjs-node" hint.
tf.env().set('PROD', true);

type Pad = 'same' | 'valid' | number | [[number, number], [number, number], [number, number], [number, number]];
type Shape4 = [number, number, number, number];

/** max |a - b| / max |b|: tolerant to the summation order, strict on any misplaced term. */
function relErr(actual: ArrayLike<number>, expected: ArrayLike<number>): number {
  expect(actual.length).toBe(expected.length);
  let num = 0;
  let den = 0;
  for (let i = 0; i < expected.length; i++) {
    num = Math.max(num, Math.abs((actual[i] as number) - (expected[i] as number)));
    den = Math.max(den, Math.abs(expected[i] as number));
  }
  return den === 0 ? num : num / den;
}

/** Deterministic values in [-1, 1) so both backends see identical inputs. */
function values(n: number, seed: number): Float32Array {
  return uniformValues(n, seed, -1, 1);
}

function size(shape: number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}

async function onBackend<T>(name: string, f: () => T): Promise<T> {
  await tf.setBackend(name);
  return f();
}

/** dL/dW and dL/dx for L = Σ conv2d(x, W) ⊙ g, through tf.grads (the real gradient path). */
function convGrads(xShape: Shape4, fShape: Shape4, strides: number | [number, number], pad: Pad): { dw: Float32Array; dx: Float32Array } {
  return tf.tidy(() => {
    const x = tf.tensor4d(values(size(xShape), 1), xShape);
    const w = tf.tensor4d(values(size(fShape), 2), fShape);
    const yShape = tf.conv2d(x, w, strides, pad).shape;
    const g = tf.tensor(values(size(yShape), 3), yShape);
    const [dx, dw] = tf.grads((xi: tf.Tensor, wi: tf.Tensor) =>
      tf.sum(tf.mul(tf.conv2d(xi as tf.Tensor4D, wi as tf.Tensor4D, strides, pad), g)))([x, w]);
    return { dw: (dw as tf.Tensor).dataSync() as Float32Array, dx: (dx as tf.Tensor).dataSync() as Float32Array };
  });
}

interface ConvCase {
  name: string;
  x: Shape4;
  f: Shape4;
  strides: number | [number, number];
  pad: Pad;
}

const convCases: ConvCase[] = [
  { name: '1x1', x: [2, 6, 5, 12], f: [1, 1, 12, 7], strides: 1, pad: 'valid' },
  { name: '3x3 pad same, few channels (stacked taps)', x: [2, 9, 7, 5], f: [3, 3, 5, 6], strides: 1, pad: 'same' },
  { name: '3x3 numeric pad 1, many channels (zero-copy taps)', x: [2, 9, 7, 70], f: [3, 3, 70, 6], strides: 1, pad: 1 },
  { name: '7x7 stride 2 explicit pad 3 (stem)', x: [2, 15, 13, 3], f: [7, 7, 3, 8], strides: 2, pad: [[0, 0], [3, 3], [3, 3], [0, 0]] },
  { name: 'odd: 3x3 stride 2 valid, unused last row', x: [3, 10, 9, 4], f: [3, 3, 4, 5], strides: 2, pad: 'valid' },
  { name: 'odd: 2x3 strides [2,3] same', x: [1, 11, 13, 3], f: [2, 3, 3, 4], strides: [2, 3], pad: 'same' },
  { name: 'odd: 1x1 stride 2', x: [2, 7, 7, 4], f: [1, 1, 4, 5], strides: 2, pad: 'valid' },
  { name: 'odd: 5x5 valid larger than half the input', x: [2, 6, 7, 3], f: [5, 5, 3, 2], strides: 1, pad: 'valid' },
];

describe('wasm training kernels', () => {
  let registered: string[] = [];
  let missingBefore: string[] = [];

  beforeAll(async () => {
    await tf.setBackend('wasm');
    await tf.ready();
    missingBefore = ['Conv2DBackpropFilter', 'Conv2DBackpropInput', 'MaxPoolGrad', 'AvgPoolGrad', 'BatchMatMul']
      .filter((k) => tf.getKernel(k, 'wasm') == null);
    registered = registerWasmTrainingKernels();
  });

  afterAll(async () => {
    unregisterWasmFastOverrides();
    await tf.setBackend('cpu');
  });

  it('registers exactly the kernels wasm lacks, once', () => {
    expect(missingBefore).toEqual(['Conv2DBackpropFilter']);
    expect(registered).toEqual(['Conv2DBackpropFilter']);
    for (const name of registered) expect(tf.getKernel(name, 'wasm')).toBeDefined();
    expect(registered).not.toContain('Conv2DBackpropInput');
    expect(registerWasmTrainingKernels()).toEqual([]);
  });

  for (const c of convCases) {
    it(`conv2d filter gradient on wasm equals cpu: ${c.name}`, async () => {
      const cpu = await onBackend('cpu', () => convGrads(c.x, c.f, c.strides, c.pad));
      const wasm = await onBackend('wasm', () => convGrads(c.x, c.f, c.strides, c.pad));
      expect(relErr(wasm.dw, cpu.dw)).toBeLessThan(1e-4);
      expect(relErr(wasm.dx, cpu.dx)).toBeLessThan(1e-4);
    });
  }

  it('leaves no tensors or backend buffers behind', async () => {
    await tf.setBackend('wasm');
    convGrads([2, 9, 7, 70], [3, 3, 70, 6], 1, 1);
    const before = tf.memory();
    const backend = tf.backend() as unknown as { numDataIds(): number };
    const idsBefore = backend.numDataIds();
    for (const c of convCases) convGrads(c.x, c.f, c.strides, c.pad);
    expect(tf.memory().numTensors).toBe(before.numTensors);
    expect(backend.numDataIds()).toBe(idsBefore);
  });

  /**
   * Shapes big enough for the K-chunked paths (B over 1M floats, remainder
   * chunk) are too slow for the cpu reference; the reference here is an
   * explicit im2col on wasm built from stock kernels only.
   */
  function im2colFilterGrad(x: tf.Tensor4D, dy: tf.Tensor4D, kh: number, kw: number, pad: number): tf.Tensor4D {
    return tf.tidy(() => {
      const [n, oh, ow, cout] = dy.shape;
      const cin = x.shape[3];
      const xp = tf.pad(x, [[0, 0], [pad, pad], [pad, pad], [0, 0]]);
      const dyFlat = tf.reshape(dy, [n * oh * ow, cout]);
      const taps: tf.Tensor[] = [];
      for (let i = 0; i < kh; i++) {
        for (let j = 0; j < kw; j++) {
          const xs = tf.reshape(tf.slice(xp, [0, i, j, 0], [n, oh, ow, cin]), [n * oh * ow, cin]);
          taps.push(tf.matMul(tf.transpose(xs), dyFlat));
        }
      }
      return tf.reshape(tf.stack(taps), [kh, kw, cin, cout]) as tf.Tensor4D;
    });
  }

  for (const [name, xShape, k, cout] of [
    ['1x1 K-chunked with a remainder chunk', [3, 33, 35, 24], 1, 320],
    ['3x3 many channels, K-chunked B', [2, 40, 40, 64], 3, 400],
  ] as [string, Shape4, number, number][]) {
    it(`conv2d filter gradient, ${name}, equals im2col`, async () => {
      await tf.setBackend('wasm');
      const pad = (k - 1) / 2;
      const x = tf.tensor4d(values(size(xShape), 4), xShape);
      const dy = tf.tensor4d(values(xShape[0] * xShape[1] * xShape[2] * cout, 5), [xShape[0], xShape[1], xShape[2], cout]);
      const got = tf.engine().runKernel('Conv2DBackpropFilter', { x, dy },
        { strides: 1, pad, dataFormat: 'NHWC', filterShape: [k, k, xShape[3], cout] }) as tf.Tensor;
      const want = im2colFilterGrad(x, dy, k, k, pad);
      expect(relErr(got.dataSync(), want.dataSync())).toBeLessThan(1e-4);
      tf.dispose([x, dy, got, want]);
    });
  }

  it('matMulTransposeA (a 1×1 filter gradient) equals tf.matMul(a, b, true, false); its gradient products equal tf.grads', async () => {
    // The second shape (K·N over 1M floats) takes the K-chunked path of the wasm Conv2DBackpropFilter
    // with a remainder chunk. d(aᵀb)/da = b·gᵀ and d/db = a·g are the products the recomputing gradients use.
    for (const [backend, k, m, n] of [['wasm', 300, 70, 40], ['wasm', 10000, 30, 120], ['cpu', 300, 70, 40]] as [string, number, number, number][]) {
      await tf.setBackend(backend);
      const [got, want, gotGrads, wantGrads] = tf.tidy(() => {
        const a = tf.tensor2d(values(k * m, 6), [k, m]);
        const b = tf.tensor2d(values(k * n, 7), [k, n]);
        const g = tf.tensor2d(values(m * n, 8), [m, n]);
        const loss = (f: (p: tf.Tensor2D, q: tf.Tensor2D) => tf.Tensor2D) =>
          (p: tf.Tensor, q: tf.Tensor) => tf.sum(tf.mul(f(p as tf.Tensor2D, q as tf.Tensor2D), g));
        return [
          matMulTransposeA(a, b).dataSync(),
          tf.matMul(a, b, true, false).dataSync(),
          [matMulTransposeB(b, g), tf.matMul(a, g)].map((t) => t.dataSync()),
          tf.grads(loss((p, q) => tf.matMul(p, q, true, false)))([a, b]).map((t) => t.dataSync()),
        ] as const;
      });
      expect(relErr(got, want)).toBeLessThan(1e-5);
      expect(relErr(gotGrads[0] as Float32Array, wantGrads[0] as Float32Array)).toBeLessThan(1e-5);
      expect(relErr(gotGrads[1] as Float32Array, wantGrads[1] as Float32Array)).toBeLessThan(1e-5);
    }
  });
});

describe('wasm fast overrides (opt-in)', () => {
  beforeAll(async () => {
    registerWasmTrainingKernels();
    await tf.setBackend('wasm');
    await tf.ready();
    registerWasmFastOverrides();
  });

  afterAll(() => {
    unregisterWasmFastOverrides();
  });

  it('replaces only existing kernels, idempotently, and restores the originals', () => {
    unregisterWasmFastOverrides();
    const overridden = ['Identity', 'Conv2DBackpropInput', 'MaxPoolGrad', 'AvgPoolGrad', 'BatchMatMul', 'Slice', 'Conv2D'];
    const before = overridden.map((k) => tf.getKernel(k, 'wasm'));
    const replaced = registerWasmFastOverrides();
    expect(replaced.sort()).toEqual([...overridden].sort());
    expect(registerWasmFastOverrides()).toEqual([]);
    for (const [i, k] of overridden.entries()) {
      const now = tf.getKernel(k, 'wasm');
      expect(now.kernelFunc).not.toBe(before[i]?.kernelFunc);
      // The original setupFunc must stay attached: the fallback path depends on it.
      expect(now.setupFunc).toBe(before[i]?.setupFunc);
    }
    expect(unregisterWasmFastOverrides().sort()).toEqual(replaced.sort());
    for (const [i, k] of overridden.entries()) {
      expect(tf.getKernel(k, 'wasm').kernelFunc).toBe(before[i]?.kernelFunc);
    }
    expect(registerWasmFastOverrides().sort()).toEqual(replaced.sort());
  });

  for (const c of [
    ...convCases,
    { name: 'pad larger than k-1 (falls back)', x: [1, 6, 6, 2], f: [2, 2, 2, 3], strides: 1, pad: 2 } as ConvCase,
  ]) {
    it(`conv2d input gradient with the fast override equals cpu: ${c.name}`, async () => {
      const cpu = await onBackend('cpu', () => convGrads(c.x, c.f, c.strides, c.pad));
      const wasm = await onBackend('wasm', () => convGrads(c.x, c.f, c.strides, c.pad));
      expect(relErr(wasm.dx, cpu.dx)).toBeLessThan(1e-4);
      expect(relErr(wasm.dw, cpu.dw)).toBeLessThan(1e-4);
    });
  }

  function poolGrad(kind: 'max' | 'avg', x: tf.Tensor4D, k: number | [number, number], s: number | [number, number], pad: 'same' | 'valid' | number): Float32Array {
    return tf.tidy(() => {
      const f = (t: tf.Tensor) => (kind === 'max' ? tf.maxPool(t as tf.Tensor4D, k, s, pad) : tf.avgPool(t as tf.Tensor4D, k, s, pad));
      const g = tf.tensor(values(size(f(x).shape), 9), f(x).shape);
      return tf.grad((t: tf.Tensor) => tf.sum(tf.mul(f(t), g)))(x).dataSync() as Float32Array;
    });
  }

  for (const [kind, k, s, pad] of [
    ['max', 3, 2, 1], ['max', 3, 2, 'same'], ['max', 2, 2, 'valid'], ['max', [3, 2], [1, 2], 'valid'],
    ['avg', 2, 2, 'valid'], ['avg', 3, 2, 'same'], ['avg', 3, 1, 1],
  ] as ['max' | 'avg', number | [number, number], number | [number, number], 'same' | 'valid' | number][]) {
    it(`${kind}Pool gradient (k ${String(k)}, s ${String(s)}, pad ${String(pad)}) with the fast override equals cpu`, async () => {
      const shape: Shape4 = [2, 9, 11, 5];
      const run = () => poolGrad(kind, tf.tensor4d(values(size(shape), 10), shape), k, s, pad);
      const cpu = await onBackend('cpu', run);
      const wasm = await onBackend('wasm', run);
      expect(relErr(wasm, cpu)).toBeLessThan(1e-5);
    });
  }

  it('maxPool gradient routes ties to the first maximum, like cpu', async () => {
    const shape: Shape4 = [1, 5, 5, 2];
    const run = () => poolGrad('max', tf.tidy(() => tf.round(tf.mul(tf.tensor4d(values(25 * 2, 11), shape), 1.5)) as tf.Tensor4D), 3, 1, 'same');
    const cpu = await onBackend('cpu', run);
    const wasm = await onBackend('wasm', run);
    // Same positions receive gradient; sums of several dy may round differently.
    expect(Array.from(wasm, (v) => v !== 0)).toEqual(Array.from(cpu, (v) => v !== 0));
    expect(relErr(wasm, cpu)).toBeLessThan(1e-6);
  });

  for (const [name, aShape, bShape, ta, tb] of [
    ['transposeA', [300, 50], [300, 40], true, false],
    ['transposeB', [50, 300], [40, 300], false, true],
    ['both', [300, 50], [40, 300], true, true],
    ['batched', [3, 50, 60], [3, 60, 40], false, false],
    ['batched, broadcast a, transposeB', [1, 50, 60], [4, 40, 60], false, true],
    ['tiny (original path)', [4, 3], [4, 2], true, false],
  ] as [string, number[], number[], boolean, boolean][]) {
    it(`BatchMatMul override equals cpu: ${name}`, async () => {
      const run = () => tf.tidy(() => tf.matMul(tf.tensor(values(size(aShape), 12), aShape), tf.tensor(values(size(bShape), 13), bShape), ta, tb).dataSync());
      const cpu = await onBackend('cpu', run);
      const wasm = await onBackend('wasm', run);
      expect(relErr(wasm, cpu)).toBeLessThan(1e-5);
    });
  }

  for (const [name, shape, begin, sliceSize] of [
    ['a channel prefix (a dense layer\'s input)', [2, 5, 6, 40], [0, 0, 0, 0], [2, 5, 6, 24]],
    ['a channel range (new features)', [2, 5, 6, 40], [0, 0, 0, 16], [2, 5, 6, 24]],
    ['a box in every axis', [3, 7, 6, 40], [1, 2, 1, 3], [2, 4, 4, 33]],
    ['whole trailing axes (one run per sample)', [4, 3, 3, 8], [1, 0, 0, 0], [2, 3, 3, 8]],
    ['rank 2', [30, 50], [4, 10], [20, 30]],
    ['a short last axis (original path)', [2, 5, 6, 8], [0, 1, 0, 2], [2, 3, 6, 4]],
  ] as [string, number[], number[], number[]][]) {
    it(`Slice override equals cpu: ${name}`, async () => {
      const run = () => tf.tidy(() => tf.slice(tf.tensor(values(size(shape), 15), shape), begin, sliceSize).dataSync());
      const cpu = await onBackend('cpu', run);
      const wasm = await onBackend('wasm', run);
      expect(Array.from(wasm)).toEqual(Array.from(cpu));
    });
  }

  it('leaves no tensors or backend buffers behind', async () => {
    await tf.setBackend('wasm');
    const work = () => {
      tf.tidy(() => tf.slice(tf.ones([2, 5, 6, 40]), [0, 1, 0, 8], [2, 3, 6, 24]).dataSync());
      for (const c of convCases) convGrads(c.x, c.f, c.strides, c.pad);
      const x = tf.tensor4d(values(2 * 9 * 11 * 5, 14), [2, 9, 11, 5]);
      poolGrad('max', x, 3, 2, 1);
      poolGrad('avg', x, 2, 2, 'valid');
      tf.tidy(() => tf.matMul(tf.ones([3, 50, 60]), tf.ones([3, 40, 60]), false, true).dataSync());
      x.dispose();
    };
    work();
    const before = tf.memory().numTensors;
    const backend = tf.backend() as unknown as { numDataIds(): number };
    const idsBefore = backend.numDataIds();
    work();
    expect(tf.memory().numTensors).toBe(before);
    expect(backend.numDataIds()).toBe(idsBefore);
  });

  it('a small CNN training step has the same gradients on wasm (with overrides) as on cpu', async () => {
    const step = () => tf.tidy(() => {
      const x = tf.tensor4d(values(2 * 32 * 32 * 3, 20), [2, 32, 32, 3]);
      const labels = tf.oneHot(tf.tensor1d([1, 3], 'int32'), 5);
      const params = [
        tf.tensor4d(values(7 * 7 * 3 * 16, 21), [7, 7, 3, 16]).mul(0.1),
        tf.tensor4d(values(16 * 24, 22), [1, 1, 16, 24]).mul(0.2),
        tf.tensor4d(values(9 * 24 * 8, 23), [3, 3, 24, 8]).mul(0.1),
        tf.tensor2d(values(24 * 5, 24), [24, 5]).mul(0.2),
      ];
      const loss = (w1: tf.Tensor, w2: tf.Tensor, w3: tf.Tensor, w4: tf.Tensor) => {
        let h = tf.relu(tf.conv2d(x, w1 as tf.Tensor4D, 2, [[0, 0], [3, 3], [3, 3], [0, 0]]));
        h = tf.maxPool(h, 3, 2, 1);
        const b = tf.relu(tf.conv2d(h, w2 as tf.Tensor4D, 1, 'valid'));
        h = tf.concat([h, tf.conv2d(b, w3 as tf.Tensor4D, 1, 1)], 3);
        h = tf.avgPool(h, 2, 2, 'valid');
        const pooled = tf.mean(h, [1, 2]) as tf.Tensor2D;
        return tf.losses.softmaxCrossEntropy(labels, tf.matMul(pooled, w4 as tf.Tensor2D));
      };
      return tf.grads(loss)(params).map((t) => t.dataSync() as Float32Array);
    });
    const cpu = await onBackend('cpu', step);
    const wasm = await onBackend('wasm', step);
    for (let i = 0; i < cpu.length; i++) expect(relErr(wasm[i] as Float32Array, cpu[i] as Float32Array)).toBeLessThan(1e-4);
  });
});
