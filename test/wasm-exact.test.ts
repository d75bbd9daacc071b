/**
 * The `exact` wasm kernels (issue #23): every output is the float64 sum of exact float32 products, rounded
 * once — so it equals the float64 reference rounded to float32 within 1 ulp. The stock float32-accumulating
 * path does not meet that on a long reduction, which is what makes this test able to fail.
 */
import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { registerWasmFastOverrides, registerWasmTrainingKernels } from '../src/backend/wasm/index.js';
import { registerWasmExactKernels, unregisterWasmExactKernels } from '../src/backend/wasm/exact/register.js';
import { EXACT_GEMM_WASM } from '../src/backend/wasm/exact/exact-gemm-wasm.js';
import { assembleExactGemm } from '../scripts/wasm-source.js';
import { initBackend, setNumerics } from '../src/backend/index.js';
import { parseNumerics } from '../src/backend/numerics.js';
import { UsageError } from '../src/util/errors.js';
import { runBenchConfig, type BenchConfig } from '../src/bench/benchmark.js';
import { DEFAULT_RECOMPUTING_MODE } from '../src/layers/memory-modes.js';
import { uniformValues } from './helpers/tensors.js';

tf.env().set('PROD', true);

type Shape4 = [number, number, number, number];
type Pad = 'same' | 'valid' | number;

/** Deterministic values in [0.5, 1.5): positive, so sums are well conditioned and 1 ulp is a fair bound. */
function values(n: number, seed: number): Float32Array {
  return uniformValues(n, seed, 0.5, 1.5);
}

const size = (shape: readonly number[]) => shape.reduce((a, b) => a * b, 1);

/** The largest |actual − expected| in units of the last place of float32(expected). */
function maxUlps(actual: Float32Array, expected: Float64Array): number {
  expect(actual.length).toBe(expected.length);
  let worst = 0;
  for (let i = 0; i < expected.length; i++) {
    const e = Math.fround(expected[i] as number);
    const ulp = Math.max(2 ** (Math.floor(Math.log2(Math.abs(e))) - 23), 2 ** -149);
    worst = Math.max(worst, Math.abs((actual[i] as number) - e) / ulp);
  }
  return worst;
}

function geometry(xShape: Shape4, fShape: Shape4, stride: number, pad: Pad) {
  return tf.backend_util.computeConv2DInfo(xShape, fShape, stride, 1, pad, undefined, false, 'channelsLast');
}

/** float64 references (sums of exact products in JavaScript doubles). */
function refConv(x: Float32Array, w: Float32Array, g: tf.backend_util.Conv2DInfo): Float64Array {
  const { batchSize: nb, inHeight: H, inWidth: W, inChannels: ci, outHeight: OH, outWidth: OW, outChannels: co,
    filterHeight: fh, filterWidth: fw, strideHeight: sh, strideWidth: sw } = g;
  const y = new Float64Array(nb * OH * OW * co);
  for (let b = 0; b < nb; b++) for (let r = 0; r < OH; r++) for (let q = 0; q < OW; q++) for (let o = 0; o < co; o++) {
    let s = 0;
    for (let i = 0; i < fh; i++) for (let j = 0; j < fw; j++) {
      const hi = r * sh + i - g.padInfo.top;
      const wi = q * sw + j - g.padInfo.left;
      if (hi < 0 || hi >= H || wi < 0 || wi >= W) continue;
      for (let c = 0; c < ci; c++) s += (x[((b * H + hi) * W + wi) * ci + c] as number) * (w[((i * fw + j) * ci + c) * co + o] as number);
    }
    y[((b * OH + r) * OW + q) * co + o] = s;
  }
  return y;
}

function refFilterGrad(x: Float32Array, dy: Float32Array, g: tf.backend_util.Conv2DInfo): Float64Array {
  const { batchSize: nb, inHeight: H, inWidth: W, inChannels: ci, outHeight: OH, outWidth: OW, outChannels: co,
    filterHeight: fh, filterWidth: fw, strideHeight: sh, strideWidth: sw } = g;
  const dw = new Float64Array(fh * fw * ci * co);
  for (let b = 0; b < nb; b++) for (let r = 0; r < OH; r++) for (let q = 0; q < OW; q++) {
    for (let i = 0; i < fh; i++) for (let j = 0; j < fw; j++) {
      const hi = r * sh + i - g.padInfo.top;
      const wi = q * sw + j - g.padInfo.left;
      if (hi < 0 || hi >= H || wi < 0 || wi >= W) continue;
      for (let c = 0; c < ci; c++) for (let o = 0; o < co; o++) {
        dw[((i * fw + j) * ci + c) * co + o]! += (x[((b * H + hi) * W + wi) * ci + c] as number) * (dy[((b * OH + r) * OW + q) * co + o] as number);
      }
    }
  }
  return dw;
}

function refInputGrad(dy: Float32Array, w: Float32Array, g: tf.backend_util.Conv2DInfo): Float64Array {
  const { batchSize: nb, inHeight: H, inWidth: W, inChannels: ci, outHeight: OH, outWidth: OW, outChannels: co,
    filterHeight: fh, filterWidth: fw, strideHeight: sh, strideWidth: sw } = g;
  const dx = new Float64Array(nb * H * W * ci);
  for (let b = 0; b < nb; b++) for (let r = 0; r < OH; r++) for (let q = 0; q < OW; q++) {
    for (let i = 0; i < fh; i++) for (let j = 0; j < fw; j++) {
      const hi = r * sh + i - g.padInfo.top;
      const wi = q * sw + j - g.padInfo.left;
      if (hi < 0 || hi >= H || wi < 0 || wi >= W) continue;
      for (let c = 0; c < ci; c++) for (let o = 0; o < co; o++) {
        dx[((b * H + hi) * W + wi) * ci + c]! += (dy[((b * OH + r) * OW + q) * co + o] as number) * (w[((i * fw + j) * ci + c) * co + o] as number);
      }
    }
  }
  return dx;
}

function refMatMul(a: Float32Array, b: Float32Array, batch: [number, number], m: number, k: number, n: number, ta: boolean, tb: boolean): Float64Array {
  const [batchA, batchB] = batch;
  const nbat = Math.max(batchA, batchB);
  const y = new Float64Array(nbat * m * n);
  for (let t = 0; t < nbat; t++) {
    const ao = (batchA === 1 ? 0 : t) * m * k;
    const bo = (batchB === 1 ? 0 : t) * k * n;
    for (let i = 0; i < m; i++) for (let j = 0; j < n; j++) {
      let s = 0;
      for (let kk = 0; kk < k; kk++) {
        s += (a[ao + (ta ? kk * m + i : i * k + kk)] as number) * (b[bo + (tb ? j * k + kk : kk * n + j)] as number);
      }
      y[(t * m + i) * n + j] = s;
    }
  }
  return y;
}

beforeAll(async () => {
  registerWasmTrainingKernels();
  registerWasmFastOverrides();
  await tf.setBackend('wasm');
  await tf.ready();
  registerWasmExactKernels();
});
afterAll(() => {
  unregisterWasmExactKernels();
});

function onWasm(f: () => tf.Tensor): Float32Array {
  const t = tf.tidy(f);
  const v = t.dataSync() as Float32Array;
  t.dispose();
  return v;
}

describe('exact wasm kernels: the float64 sum rounded once (within 1 ulp)', () => {
  it('the committed module is the assembled exact-gemm.wat (npx tsx scripts/build-wasm.ts)', async () => {
    expect(Buffer.from(await assembleExactGemm()).toString('base64')).toBe(EXACT_GEMM_WASM);
  });

  const convs: Array<{ x: Shape4; f: Shape4; stride: number; pad: Pad }> = [
    { x: [2, 9, 7, 13], f: [1, 1, 13, 10], stride: 1, pad: 'valid' },
    { x: [2, 8, 8, 19], f: [3, 3, 19, 6], stride: 1, pad: 'same' },
    { x: [1, 11, 9, 5], f: [3, 3, 5, 7], stride: 2, pad: 1 },
    { x: [2, 15, 13, 3], f: [7, 7, 3, 9], stride: 2, pad: 3 },
    { x: [1, 6, 7, 9], f: [2, 2, 9, 4], stride: 2, pad: 'valid' },
    { x: [1, 5, 5, 700], f: [3, 3, 700, 5], stride: 1, pad: 'same' },
    { x: [1, 4, 4, 2048], f: [1, 1, 2048, 6], stride: 1, pad: 'valid' },
  ];
  for (const { x: xs, f: fs, stride, pad } of convs) {
    const label = `x [${xs.join(',')}] w [${fs.join(',')}] stride ${stride} pad ${pad}`;
    const g = geometry(xs, fs, stride, pad);
    const x = values(size(xs), 1);
    const w = values(size(fs), 2);
    const dy = values(size(g.outShape), 3);

    it(`Conv2D ${label}`, () => {
      const y = onWasm(() => tf.conv2d(tf.tensor4d(x, xs), tf.tensor4d(w, fs), stride, pad));
      expect(maxUlps(y, refConv(x, w, g))).toBeLessThanOrEqual(1);
    });
    it(`Conv2DBackpropFilter ${label}`, () => {
      const dw = onWasm(() =>
        tf.engine().runKernel(tf.Conv2DBackpropFilter, { x: tf.tensor4d(x, xs), dy: tf.tensor(dy, g.outShape) },
          { strides: stride, pad, dataFormat: 'NHWC', dimRoundingMode: undefined, filterShape: fs } as unknown as tf.NamedAttrMap) as tf.Tensor);
      expect(maxUlps(dw, refFilterGrad(x, dy, g))).toBeLessThanOrEqual(1);
    });
    it(`Conv2DBackpropInput ${label}`, () => {
      const dx = onWasm(() =>
        tf.engine().runKernel(tf.Conv2DBackpropInput, { dy: tf.tensor(dy, g.outShape), filter: tf.tensor4d(w, fs) },
          { strides: stride, pad, dataFormat: 'NHWC', dimRoundingMode: undefined, inputShape: xs } as unknown as tf.NamedAttrMap) as tf.Tensor);
      expect(maxUlps(dx, refInputGrad(dy, w, g))).toBeLessThanOrEqual(1);
    });
  }

  const products: Array<{ a: number[]; b: number[]; ta: boolean; tb: boolean }> = [
    { a: [37, 53], b: [53, 21], ta: false, tb: false },
    { a: [53, 37], b: [53, 22], ta: true, tb: false },
    { a: [37, 53], b: [19, 53], ta: false, tb: true },
    { a: [3, 53, 37], b: [3, 19, 53], ta: true, tb: true },
    { a: [4, 9, 300], b: [300, 12], ta: false, tb: false },
    { a: [5, 3000], b: [3000, 9], ta: false, tb: false },
  ];
  for (const { a: as, b: bs, ta, tb } of products) {
    it(`BatchMatMul a [${as.join(',')}]${ta ? 'ᵀ' : ''} · b [${bs.join(',')}]${tb ? 'ᵀ' : ''}`, () => {
      const a = values(size(as), 4);
      const b = values(size(bs), 5);
      const m = ta ? as[as.length - 1]! : as[as.length - 2]!;
      const k = ta ? as[as.length - 2]! : as[as.length - 1]!;
      const n = tb ? bs[bs.length - 2]! : bs[bs.length - 1]!;
      const batch: [number, number] = [size(as.slice(0, -2)), size(bs.slice(0, -2))];
      const y = onWasm(() => tf.matMul(tf.tensor(a, as), tf.tensor(b, bs), ta, tb));
      expect(maxUlps(y, refMatMul(a, b, batch, m, k, n, ta, tb))).toBeLessThanOrEqual(1);
    });
  }

  it('the stock float32 path misses the bound on a long reduction (so the assertions above can fail)', () => {
    const as = [8, 4096];
    const bs = [4096, 8];
    const a = values(size(as), 6);
    const b = values(size(bs), 7);
    const ref = refMatMul(a, b, [1, 1], 8, 4096, 8, false, false);
    unregisterWasmExactKernels();
    try {
      const stock = onWasm(() => tf.matMul(tf.tensor(a, as), tf.tensor(b, bs)));
      expect(maxUlps(stock, ref)).toBeGreaterThan(1);
    } finally {
      registerWasmExactKernels();
    }
    const exact = onWasm(() => tf.matMul(tf.tensor(a, as), tf.tensor(b, bs)));
    expect(maxUlps(exact, ref)).toBeLessThanOrEqual(1);
  });

  it('leaves no tensors behind and restores the previous kernels', () => {
    const before = tf.memory().numTensors;
    onWasm(() => tf.conv2d(tf.tensor4d(values(2 * 5 * 5 * 3, 1), [2, 5, 5, 3]), tf.tensor4d(values(27 * 4, 2), [3, 3, 3, 4]), 1, 'same'));
    expect(tf.memory().numTensors).toBe(before);
    const exact = tf.getKernel(tf.Conv2D, 'wasm')!.kernelFunc;
    expect(unregisterWasmExactKernels()).toContain(tf.Conv2D);
    expect(tf.getKernel(tf.Conv2D, 'wasm')!.kernelFunc).not.toBe(exact);
    expect(registerWasmExactKernels()).toEqual([tf.Conv2D, tf.Conv2DBackpropInput, tf.Conv2DBackpropFilter, tf.BatchMatMul]);
  });
});

describe('the numerics option', () => {
  const as = [4, 4096];
  const bs = [4096, 4];
  const a = values(size(as), 8);
  const b = values(size(bs), 9);
  const ref = refMatMul(a, b, [1, 1], 4, 4096, 4, false, false);
  const product = () => onWasm(() => tf.matMul(tf.tensor(a, as), tf.tensor(b, bs)));

  it("initBackend('wasm', { numerics: 'exact' }) sums in float64; setNumerics('fast') goes back to float32 sums", async () => {
    unregisterWasmExactKernels();
    await initBackend('wasm', { numerics: 'exact' });
    expect(maxUlps(product(), ref)).toBeLessThanOrEqual(1);
    await setNumerics('fast');
    expect(maxUlps(product(), ref)).toBeGreaterThan(1);
    await setNumerics('exact');
    expect(maxUlps(product(), ref)).toBeLessThanOrEqual(1);
  });

  it("keeps meta-wasm's memory prediction to the byte (the exact kernels allocate only their outputs as tensors)", async () => {
    const config: BenchConfig = { model: 'densenet121', mode: DEFAULT_RECOMPUTING_MODE, batch: 2, imageSize: 32, numClasses: 4, steps: 1 };
    await initBackend('wasm', { numerics: 'exact' });
    const exact = await runBenchConfig(config);
    await initBackend('meta-wasm');
    const meta = await runBenchConfig(config);
    expect([exact.stepPeakBytes, exact.engineStepPeakBytes, exact.baselineBytes])
      .toEqual([meta.stepPeakBytes, meta.engineStepPeakBytes, meta.baselineBytes]);
    await initBackend('wasm', { numerics: 'exact' });
  }, 300_000);

  it('refuses an unknown name, naming the option and the choices', () => {
    expect(() => parseNumerics('double')).toThrow(UsageError);
    expect(() => parseNumerics('double')).toThrow("numerics must be one of fast, exact; got 'double'");
  });
});
