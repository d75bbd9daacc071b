/**
 * Our webgpu training kernels (src/backend/webgpu/kernels) against the cpu backend on the same inputs:
 * the filter gradient (1×1, 3×3, the 7×7/2 stem, strides 1 and 2, padding, odd sizes, channel counts that
 * are and are not multiples of 4, so both the vec4 and the scalar shaders run), the pooling gradients
 * (with ReLU's zeros, so max-pool ties occur), the per-channel Sum / Mean and the channel-broadcast and
 * same-shape Multiply / Add / Sub (bit-equal to cpu; other broadcasts reach the stock kernel). Needs a WebGPU adapter;
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
    { x: [2, 9, 7, 8], size: 2, stride: 2, pad: 'valid' }, // tiling windows, a row and column past the last
    { x: [1, 5, 5, 3], size: 2, stride: 2, pad: 0 }, // workgroups over 2 rows: the last one half outside
    { x: [2, 4, 4, 1024], size: 2, stride: 2, pad: 0 }, // 256 channel units: several workgroups across channels
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

  // Multiply / Add / Sub: each output is one float32 op on the same two float32 values, so bit-equal to cpu.
  const binaryCases: Array<{ a: number[]; b: number[]; what: string }> = [
    { a: [2, 5, 7, 12], b: [12], what: 'x·v[c], C % 4 == 0 (vec4)' },
    { a: [2, 5, 7, 13], b: [13], what: 'odd C (scalar)' },
    { a: [2, 4, 4, 8], b: [1, 1, 1, 8], what: 'a [1,1,1,C] vector' },
    { a: [37, 6], b: [6], what: 'rank 2, C = 6' },
    { a: [11], b: [3, 5, 11], what: 'operand order swapped: the vector first' },
    { a: [1, 1, 1, 16], b: [3, 2, 2, 16], what: 'swapped, [1,1,1,C] vector, vec4' },
    { a: [2, 6, 6, 16], b: [2, 6, 6, 16], what: 'same shape (flat vec4)' },
    { a: [3, 5, 7], b: [3, 5, 7], what: 'same shape, odd size (flat scalar)' },
    { a: [2, 5, 7, 12], b: [2, 1, 1, 12], what: 'not a channel broadcast: the stock kernel' },
    { a: [4, 6], b: [4, 1], what: 'a broadcast of the first axis: the stock kernel' },
  ];
  for (const { a, b, what } of binaryCases) {
    for (const op of ['mul', 'add', 'sub'] as const) {
      it(`${op} [${a}] by [${b}] (${what}): bit-equal to cpu, same shape`, async () => {
        const shapes: number[][] = [];
        const { cpu, webgpu } = await onBoth([{ shape: a, seed: 8 }, { shape: b, seed: 9 }], (x, y) => {
          const out = tf[op](x!, y!);
          shapes.push(out.shape);
          return out;
        });
        expect(shapes[1]).toEqual(shapes[0]);
        expect(webgpu).toEqual(cpu);
      });
    }
  }

  it('Multiply of float32 tensors cast from int32 and bool (integer buffers under tfjs-webgpu) by float32', async () => {
    await tf.setBackend('webgpu');
    const x = tf.tensor2d([[1.5, -2, 3], [4, 5.25, -6]]);
    const counts = tf.tensor1d([7, 8, 9], 'int32').cast('float32');
    const mask = tf.tensor2d([[true, false, true], [false, true, true]], [2, 3], 'bool').cast('float32');
    const out = [tf.mul(x, counts), tf.mul(counts, x), tf.mul(x, mask), tf.sub(mask, x)];
    expect(Array.from(await out[0]!.data())).toEqual([10.5, -16, 27, 28, 42, -54]);
    expect(Array.from(await out[1]!.data())).toEqual([10.5, -16, 27, 28, 42, -54]);
    expect(Array.from(await out[2]!.data())).toEqual([1.5, -0, 3, 0, 5.25, -6]);
    expect(Array.from(await out[3]!.data())).toEqual([-0.5, 2, -2, -4, -4.25, 7]);
    tf.dispose([x, counts, mask, ...out]);
    await tf.setBackend('cpu');
  });

  it('Multiply on int32 operands goes to the stock kernel (exact products)', async () => {
    await tf.setBackend('webgpu');
    const out = tf.mul(tf.tensor2d([[1, 2, 3], [4, 5, 6]], [2, 3], 'int32'), tf.tensor1d([7, 8, 9], 'int32'));
    expect(out.dtype).toBe('int32');
    expect(Array.from(await out.data())).toEqual([7, 16, 27, 28, 40, 54]);
    out.dispose();
    await tf.setBackend('cpu');
  });

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
