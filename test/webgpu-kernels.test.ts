/**
 * Our webgpu training kernels (src/backend/webgpu/kernels) against the cpu backend on the same inputs:
 * the filter gradient (1×1, 3×3, the 7×7/2 stem, strides 1 and 2, padding, odd sizes, channel counts that
 * are and are not multiples of 4, so both the vec4 and the scalar shaders run), the pooling gradients
 * (with ReLU's zeros, so max-pool ties occur) and the per-channel Sum / Mean. Needs a WebGPU adapter;
 * without one every test is skipped and the suite's title says why.
 * Bounds: max |webgpu − cpu| / max |cpu| ≤ 1e-5 for the filter gradient and the sums (float32 sums of up to
 * a few thousand terms, in another order), ≤ 1e-6 for the pooling gradients (at most 4 terms per value).
 */
import * as tf from '@tensorflow/tfjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from '../src/backend/index.js';
import { findWebGPUAdapter, WEBGPU_TRAINING_KERNELS } from '../src/backend/webgpu/index.js';
import { avgPoolGrad, conv2dBackpropFilter, maxPoolGrad, type Padding } from '../src/ops/kernels.js';

const search = await findWebGPUAdapter();
const SUITE = search.found
  ? `webgpu kernels on adapter "${search.adapter.name}"${search.adapter.software ? ' (software)' : ''}`
  : `webgpu kernels: SKIPPED, no adapter here — ${search.missing}`;
if (!search.found) process.stderr.write(`webgpu-kernels.test.ts: SKIPPED: ${search.missing}\n`);

type Shape4 = [number, number, number, number];

/** Runs `f` on webgpu and on cpu with the same input values; returns both results' values. */
async function onBoth(inputs: Array<{ shape: number[]; seed: number; relu?: boolean }>, f: (...t: tf.Tensor[]) => tf.Tensor) {
  // Inputs are made on cpu (synchronous reads), then uploaded to each backend.
  await tf.setBackend('cpu');
  const values = inputs.map(({ shape, seed, relu }) => tf.tidy(() => {
    const t = tf.randomNormal(shape, 0, 1, 'float32', seed);
    return (relu ? tf.relu(t) : t).dataSync();
  }));
  const run = async (backend: string) => {
    await tf.setBackend(backend);
    const ts = inputs.map(({ shape }, i) => tf.tensor(values[i]!, shape));
    const out = f(...ts);
    const data = Float32Array.from(await out.data());
    tf.dispose([...ts, out]);
    return data;
  };
  const cpu = await run('cpu');
  const webgpu = await run('webgpu');
  await tf.setBackend('cpu');
  return { cpu, webgpu };
}

function relativeMaxError(actual: Float32Array, expected: Float32Array): number {
  expect(actual.length).toBe(expected.length);
  let diff = 0;
  let scale = 0;
  for (let i = 0; i < expected.length; i++) {
    diff = Math.max(diff, Math.abs(actual[i]! - expected[i]!));
    scale = Math.max(scale, Math.abs(expected[i]!));
  }
  return diff / scale;
}

describe.runIf(search.found)(SUITE, () => {
  beforeAll(async () => {
    expect(await initBackend('webgpu')).toBe('webgpu');
    await initBackend('cpu'); // the kernels stay registered; each test switches between the two
  });
  afterAll(async () => {
    await initBackend('cpu');
  });

  it('registers ours in place of the stock kernels when the backend is activated', () => {
    for (const config of WEBGPU_TRAINING_KERNELS) expect(tf.getKernel(config.kernelName, 'webgpu')?.kernelFunc).toBe(config.kernelFunc);
  });

  const filterCases: Array<{ x: Shape4; k: number; cout: number; stride: number; pad: Padding }> = [
    { x: [2, 9, 7, 5], k: 3, cout: 6, stride: 1, pad: 1 }, // odd sizes, scalar shader
    { x: [2, 8, 8, 16], k: 3, cout: 32, stride: 1, pad: 'same' }, // a dense layer's 3×3, vec4 shader
    { x: [2, 8, 8, 16], k: 3, cout: 8, stride: 2, pad: 1 },
    { x: [1, 5, 5, 37], k: 1, cout: 33, stride: 1, pad: 'valid' }, // 1×1, M and N not multiples of the tile
    { x: [2, 6, 6, 64], k: 1, cout: 128, stride: 1, pad: 0 }, // a bottleneck 1×1
    { x: [3, 11, 13, 3], k: 7, cout: 64, stride: 2, pad: 3 }, // the stem: 7×7/2, 3 channels
    { x: [2, 16, 16, 8], k: 7, cout: 4, stride: 2, pad: 3 },
    { x: [2, 32, 32, 3], k: 7, cout: 64, stride: 2, pad: 3 }, // K = 512 positions: many K tiles
  ];
  for (const { x, k, cout, stride, pad } of filterCases) {
    it(`Conv2DBackpropFilter ${k}×${k}/${stride} pad ${pad}, x [${x.join(',')}], cout ${cout}: within 1e-5 of cpu`, async () => {
      const y = tf.conv2d(tf.zeros(x) as tf.Tensor4D, tf.zeros([k, k, x[3], cout]) as tf.Tensor4D, stride, pad as 'same');
      const { cpu, webgpu } = await onBoth([{ shape: x, seed: 1 }, { shape: y.shape, seed: 2 }], (xs, dy) =>
        conv2dBackpropFilter(xs as tf.Tensor4D, dy as tf.Tensor4D, [k, k, x[3], cout], stride, pad));
      y.dispose();
      expect(relativeMaxError(webgpu, cpu)).toBeLessThanOrEqual(1e-5);
    });
  }

  const poolCases: Array<{ x: Shape4; size: number; stride: number; pad: number | 'same' | 'valid' }> = [
    { x: [2, 16, 16, 64], size: 3, stride: 2, pad: 1 }, // the stem's max-pool
    { x: [1, 9, 11, 3], size: 3, stride: 2, pad: 1 }, // odd sizes, scalar shader
    { x: [2, 8, 8, 12], size: 2, stride: 2, pad: 0 }, // a transition's pool
    { x: [2, 7, 9, 5], size: 3, stride: 1, pad: 'same' }, // overlapping windows, every position in several
  ];
  for (const { x, size, stride, pad } of poolCases) {
    it(`MaxPoolGrad ${size}×${size}/${stride} pad ${pad}, x [${x.join(',')}] with ReLU zeros (ties): within 1e-6 of cpu`, async () => {
      const dyShape = tf.maxPool(tf.zeros(x) as tf.Tensor4D, size, stride, pad).shape;
      const { cpu, webgpu } = await onBoth([{ shape: x, seed: 3, relu: true }, { shape: dyShape, seed: 4 }], (xs, dy) => {
        const y = tf.maxPool(xs as tf.Tensor4D, size, stride, pad);
        return maxPoolGrad(dy as tf.Tensor4D, xs as tf.Tensor4D, y, size, stride, pad);
      });
      expect(relativeMaxError(webgpu, cpu)).toBeLessThanOrEqual(1e-6);
    });
    it(`AvgPoolGrad ${size}×${size}/${stride} pad ${pad}, x [${x.join(',')}]: within 1e-6 of cpu`, async () => {
      const dyShape = tf.avgPool(tf.zeros(x) as tf.Tensor4D, size, stride, pad).shape;
      const { cpu, webgpu } = await onBoth([{ shape: x, seed: 5 }, { shape: dyShape, seed: 6 }], (xs, dy) =>
        avgPoolGrad(dy as tf.Tensor4D, xs as tf.Tensor4D, size, stride, pad));
      expect(relativeMaxError(webgpu, cpu)).toBeLessThanOrEqual(1e-6);
    });
  }

  const reduceCases: Array<{ shape: number[]; axis: number[]; keepDims: boolean }> = [
    { shape: [4, 16, 16, 64], axis: [0, 1, 2], keepDims: false }, // the batch-norm sums: vec4
    { shape: [3, 7, 5, 6], axis: [0, 1, 2], keepDims: true }, // scalar shader, kept dims
    { shape: [5000, 12], axis: [0], keepDims: false }, // many row chunks
    { shape: [4, 6, 8], axis: [2], keepDims: false }, // not over the leading axes: the stock kernel
  ];
  for (const { shape, axis, keepDims } of reduceCases) {
    for (const op of ['sum', 'mean'] as const) {
      it(`${op} over axes [${axis}] of [${shape}]${keepDims ? ', keepDims' : ''}: within 1e-5 of cpu, same shape`, async () => {
        let shapes: number[][] = [];
        const { cpu, webgpu } = await onBoth([{ shape, seed: 7 }], (x) => {
          const out = tf[op](x, axis, keepDims);
          shapes.push(out.shape);
          return out;
        });
        expect(shapes[1]).toEqual(shapes[0]);
        shapes = [];
        expect(relativeMaxError(webgpu, cpu)).toBeLessThanOrEqual(1e-5);
      });
    }
  }
});

it.runIf(!search.found)('no adapter here: the webgpu kernel tests are skipped, and the reason names what is missing', () => {
  expect(search.found ? '' : search.missing).toMatch(/apt-get install|npm install|driver/);
});
