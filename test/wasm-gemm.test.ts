/**
 * The project's own wasm GEMM (src/backend/wasm/gemm): the committed bytes are the generated source, and both
 * builds — relaxed SIMD (fused multiply-add) and the plain SIMD fallback — agree with a float64 reference
 * within the rounding bound of their blocked sums, on odd sizes and edges, in both operand layouts.
 */
import { promises as fs } from 'node:fs';
import { fileURLToPath } from 'node:url';
import * as v8 from 'node:v8';
import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from '../src/backend/index.js';
import { Worker } from 'node:worker_threads';
import { RELAXED_SIMD_MODULE, wasmFeatures } from '../src/backend/doctor/wasm-features.js';
import { GEMM_KC, setGemmBuild, wasmGemm, type GemmBuild } from '../src/backend/wasm/gemm/gemm.js';
import { conv2DGemmConfig } from '../src/backend/wasm/kernels/conv2d-gemm.js';
import { GEMM_KERNELS, GEMM_ROUTES, gemmRoute, setGemmRoute, type GemmRoute } from '../src/backend/wasm/gemm/routes.js';
import * as committed from '../src/backend/wasm/gemm/gemm-wasm.js';
import type { EmscriptenWasm } from '../src/backend/wasm/sums/channel-sums.js';
import { GEMM_TS, gemmModule } from '../scripts/wasm-source.js';
import { uniformValues } from './helpers/tensors.js';

// Node 20 has relaxed SIMD behind a V8 flag, which takes effect when set at run time (V8 flags are
// process-wide, so worker threads see it too); newer Node has it on by default.
v8.setFlagsFromString('--experimental-wasm-relaxed-simd');
const RELAXED = wasmFeatures().relaxedSimd;

type Wasm = EmscriptenWasm & { HEAPU8: Uint8Array };
let wasm: Wasm;

beforeAll(async () => {
  await initBackend('wasm');
  wasm = (tf.backend() as unknown as { wasm: Wasm }).wasm;
});

function random(n: number, seed: number): Float32Array {
  return uniformValues(n, seed, -0.3, 0.7);
}

interface Case {
  m: number;
  n: number;
  k: number;
  /** 'km': A stored [K, M] (filter gradients); 'mk': A stored [M, K] (a forward 1×1 conv). */
  layout: 'km' | 'mk';
  /** Extra floats per row of A's storage, B and C (strided operands, as views of wider tensors). */
  pad: number;
  kc?: number;
}

interface Result {
  got: Float32Array;
  exact: Float64Array;
  /** Σ_k |A(k, m)·B(k, n)| + |C0|: the scale of the rounding bound. */
  magnitude: Float64Array;
}

/** Runs one product on the wasm heap (C starting from non-zero values) and its float64 reference. */
function product(c: Case, build: GemmBuild): Result {
  const { m, n, k, layout, pad } = c;
  const aRows = layout === 'km' ? k : m;
  const aCols = (layout === 'km' ? m : k) + pad;
  const ldb = n + pad;
  const ldc = n + pad;
  const a = random(aRows * aCols, 1 + m);
  const b = random(k * ldb, 2 + n);
  const c0 = random(m * ldc, 3 + k);
  const bytes = 4 * (a.length + b.length + c0.length);
  const base = wasm._malloc(bytes) >>> 0;
  try {
    const pa = base;
    const pb = pa + 4 * a.length;
    const pc = pb + 4 * b.length;
    let heap = new Float32Array(wasm.HEAPU8.buffer);
    heap.set(a, pa / 4);
    heap.set(b, pb / 4);
    heap.set(c0, pc / 4);
    const sk = layout === 'km' ? 4 * aCols : 4;
    const sm = layout === 'km' ? 4 : 4 * aCols;
    wasmGemm(wasm, [{ a: pa, sk, sm, b: pb, ldb: 4 * ldb, c: pc, ldc: 4 * ldc, m, n, k }], build, c.kc);
    heap = new Float32Array(wasm.HEAPU8.buffer);
    const after = heap.slice(pc / 4, pc / 4 + m * ldc);
    const got = new Float32Array(m * n);
    const exact = new Float64Array(m * n);
    const magnitude = new Float64Array(m * n);
    for (let i = 0; i < m; i++) {
      for (let j = 0; j < n; j++) {
        let s = c0[i * ldc + j] as number;
        let abs = Math.abs(s);
        for (let p = 0; p < k; p++) {
          const av = a[p * sk / 4 + i * sm / 4] as number;
          const t = av * (b[p * ldb + j] as number);
          s += t;
          abs += Math.abs(t);
        }
        exact[i * n + j] = s;
        magnitude[i * n + j] = abs;
        got[i * n + j] = after[i * ldc + j] as number;
      }
      // The row padding of C is left alone.
      for (let j = n; j < ldc; j++) expect(after[i * ldc + j]).toBe(c0[i * ldc + j]);
    }
    return { got, exact, magnitude };
  } finally {
    wasm._free(base);
  }
}

/**
 * The rounding bound of a blocked sum: each element is a chain of ≤ kc products and fused or plain
 * additions, then ⌈K/kc⌉ block partials added to C, so with u = 2⁻²⁴ the error is at most
 * (2·kc + ⌈K/kc⌉ + 1)·u·Σ|terms| (first order; 2·kc counts a product and an addition per term).
 */
function bound(c: Case): number {
  const kc = Math.min(c.kc ?? GEMM_KC, c.k);
  return (2 * kc + Math.ceil(c.k / kc) + 1) * 2 ** -24;
}

const CASES: Case[] = [
  { m: 1, n: 1, k: 1, layout: 'km', pad: 0 },
  { m: 3, n: 5, k: 7, layout: 'km', pad: 0 },
  { m: 4, n: 8, k: 256, layout: 'km', pad: 0 },
  { m: 5, n: 9, k: 257, layout: 'km', pad: 3 },
  { m: 17, n: 33, k: 600, layout: 'km', pad: 1 },
  { m: 64, n: 32, k: 1000, layout: 'km', pad: 0, kc: 64 },
  { m: 300, n: 20, k: 70, layout: 'km', pad: 0 },
  { m: 7, n: 12, k: 9, layout: 'mk', pad: 0 },
  { m: 301, n: 13, k: 129, layout: 'mk', pad: 2 },
  { m: 40, n: 128, k: 512, layout: 'mk', pad: 0 },
];

const builds: { build: GemmBuild; skip: string | false }[] = [
  { build: 'plain', skip: false },
  { build: 'relaxed', skip: RELAXED ? false : 'this engine does not validate relaxed SIMD even with --experimental-wasm-relaxed-simd' },
];

describe('wasm GEMM', () => {
  it('the committed module is the generated one (npx tsx scripts/build-wasm.ts)', async () => {
    const file = await fs.readFile(fileURLToPath(new URL(`../${GEMM_TS}`, import.meta.url)), 'utf8');
    expect(await gemmModule()).toBe(file);
    expect(committed.GEMM_RELAXED_WASM).not.toBe(committed.GEMM_PLAIN_WASM);
  });

  for (const { build, skip } of builds) {
    describe(`${build} build`, () => {
      for (const c of CASES) {
        it.skipIf(skip !== false)(`agrees with float64 within its rounding bound: m ${c.m} n ${c.n} k ${c.k} ${c.layout}${c.pad ? ` pad ${c.pad}` : ''}${c.kc ? ` kc ${c.kc}` : ''}`, () => {
          const { got, exact, magnitude } = product(c, build);
          const u = bound(c);
          let worst = 0;
          for (let i = 0; i < got.length; i++) {
            // + one rounding of the float32 result itself
            const allowed = u * (magnitude[i] as number) + 2 ** -24 * Math.abs(exact[i] as number);
            worst = Math.max(worst, Math.abs((got[i] as number) - (exact[i] as number)) / allowed);
          }
          expect(worst).toBeLessThanOrEqual(1);
          // and not vacuously: the result is not the starting C
          expect(got.some((v, i) => Math.abs(v - (exact[i] as number)) < Math.abs(exact[i] as number))).toBe(true);
        });
      }
    });
  }

  it.skipIf(!RELAXED)('relaxed and plain builds agree with each other on a filter-gradient shape', () => {
    const c: Case = { m: 37, n: 19, k: 3000, layout: 'km', pad: 0 };
    const relaxed = product(c, 'relaxed');
    const plain = product(c, 'plain');
    const u = bound(c);
    for (let i = 0; i < relaxed.got.length; i++) {
      expect(Math.abs((relaxed.got[i] as number) - (plain.got[i] as number))).toBeLessThanOrEqual(2 * u * (relaxed.magnitude[i] as number));
    }
  });

  it('blocked sums beat a sequential float32 sum on a long reduction (the filter gradient\'s K)', () => {
    const c: Case = { m: 8, n: 8, k: 40000, layout: 'km', pad: 0 };
    const { got, exact } = product(c, 'plain');
    // The same products summed in one float32 chain, as an unblocked kernel does.
    const a = random(c.k * c.m, 1 + c.m);
    const b = random(c.k * c.n, 2 + c.n);
    const c0 = random(c.m * c.n, 3 + c.k);
    let blocked = 0;
    let sequential = 0;
    for (let i = 0; i < c.m; i++) {
      for (let j = 0; j < c.n; j++) {
        let s = Math.fround(c0[i * c.n + j] as number);
        for (let p = 0; p < c.k; p++) s = Math.fround(s + Math.fround((a[p * c.m + i] as number) * (b[p * c.n + j] as number)));
        const e = exact[i * c.n + j] as number;
        sequential += (s - e) ** 2;
        blocked += ((got[i * c.n + j] as number) - e) ** 2;
      }
    }
    expect(Math.sqrt(blocked)).toBeLessThan(Math.sqrt(sequential) / 3);
  });

  it.skipIf(!RELAXED)('a worker thread sees relaxed SIMD once this thread set the flag (V8 flags are per process)', async () => {
    const worker = new Worker(
      `require('node:worker_threads').parentPort.postMessage(WebAssembly.validate(new Uint8Array([${RELAXED_SIMD_MODULE.join(',')}])))`,
      { eval: true });
    const validated = await new Promise((resolve, reject) => {
      worker.once('message', resolve);
      worker.once('error', reject);
    });
    await worker.terminate();
    expect(validated).toBe(true);
  });
});

/** A float64 convolution (NHWC, stride 1, symmetric zero padding) and its filter gradient, for reference. */
function conv64(x: Float32Array, xs: number[], w: Float32Array, k: number, cout: number, pad: number): Float64Array {
  const [n, h, wd, cin] = xs as [number, number, number, number];
  const oh = h + 2 * pad - k + 1;
  const ow = wd + 2 * pad - k + 1;
  const y = new Float64Array(n * oh * ow * cout);
  for (let b = 0; b < n; b++) for (let i = 0; i < oh; i++) for (let j = 0; j < ow; j++) for (let co = 0; co < cout; co++) {
    let s = 0;
    for (let di = 0; di < k; di++) for (let dj = 0; dj < k; dj++) {
      const hi = i + di - pad;
      const wj = j + dj - pad;
      if (hi < 0 || hi >= h || wj < 0 || wj >= wd) continue;
      for (let ci = 0; ci < cin; ci++) s += (x[((b * h + hi) * wd + wj) * cin + ci] as number) * (w[((di * k + dj) * cin + ci) * cout + co] as number);
    }
    y[((b * oh + i) * ow + j) * cout + co] = s;
  }
  return y;
}

function filterGrad64(x: Float32Array, xs: number[], dy: Float32Array, k: number, cout: number, pad: number): Float64Array {
  const [n, h, wd, cin] = xs as [number, number, number, number];
  const oh = h + 2 * pad - k + 1;
  const ow = wd + 2 * pad - k + 1;
  const dw = new Float64Array(k * k * cin * cout);
  for (let b = 0; b < n; b++) for (let i = 0; i < oh; i++) for (let j = 0; j < ow; j++) for (let di = 0; di < k; di++) for (let dj = 0; dj < k; dj++) {
    const hi = i + di - pad;
    const wj = j + dj - pad;
    if (hi < 0 || hi >= h || wj < 0 || wj >= wd) continue;
    for (let ci = 0; ci < cin; ci++) {
      const xv = x[((b * h + hi) * wd + wj) * cin + ci] as number;
      for (let co = 0; co < cout; co++) dw[((di * k + dj) * cin + ci) * cout + co] += xv * (dy[((b * oh + i) * ow + j) * cout + co] as number);
    }
  }
  return dw;
}

/** max |got − exact| / max |exact|. */
function relativeError(got: ArrayLike<number>, exact: Float64Array): number {
  let e = 0;
  let scale = 0;
  for (let i = 0; i < exact.length; i++) {
    e = Math.max(e, Math.abs((got[i] as number) - (exact[i] as number)));
    scale = Math.max(scale, Math.abs(exact[i] as number));
  }
  return e / scale;
}

describe('wasm kernels on the own GEMM and on XNNPACK agree with float64', () => {
  const routes = GEMM_ROUTES.flatMap((route): { route: GemmRoute; build: GemmBuild }[] => (route === 'xnnpack' ? [{ route, build: 'plain' }]
    : builds.filter((b) => b.skip === false).map((b) => ({ route, build: b.build }))));
  const shapes = [
    { xs: [2, 5, 7, 13], k: 1, cout: 9, pad: 0 },
    { xs: [3, 6, 5, 70], k: 3, cout: 11, pad: 1 },
    { xs: [1, 4, 9, 5], k: 3, cout: 8, pad: 0 },
    { xs: [2, 3, 4, 6], k: 5, cout: 7, pad: 2 },
  ];
  it("'auto' routes: filter gradients always on the own GEMM, 1×1 products with relaxed SIMD only, k×k convs on XNNPACK", () => {
    for (const kernel of GEMM_KERNELS) expect(setGemmRoute(kernel, 'auto')).toBe('auto');
    const routesWith = (build: GemmBuild) => {
      setGemmBuild(build);
      return GEMM_KERNELS.map((kernel) => gemmRoute(kernel));
    };
    expect(routesWith('plain')).toEqual(['gemm', 'xnnpack', 'xnnpack', 'xnnpack']);
    expect(routesWith('relaxed')).toEqual(['gemm', 'gemm', 'xnnpack', 'gemm']);
    setGemmBuild(null);
  });

  it("initBackend('wasm') puts the 1×1 Conv2D override in place", () => {
    expect(tf.getKernel('Conv2D', 'wasm')?.kernelFunc).toBe(conv2DGemmConfig.kernelFunc);
  });

  for (const { route, build } of routes) {
    for (const sh of shapes) {
      it(`${route}${route === 'gemm' ? ` (${build})` : ''}: ${sh.k}×${sh.k} pad ${sh.pad} x [${sh.xs.join(', ')}] → ${sh.cout}: forward and filter gradient`, () => {
        const previous = { filterGrad: setGemmRoute('filterGrad', route), conv1x1: setGemmRoute('conv1x1', route) };
        const previousMatMul = setGemmRoute('matMul', route);
        const previousKxK = setGemmRoute('convKxK', route);
        setGemmBuild(build);
        try {
          const size = sh.xs.reduce((a, b) => a * b, 1);
          const xv = random(size, 11);
          const wv = random(sh.k * sh.k * (sh.xs[3] as number) * sh.cout, 12);
          const y64 = conv64(xv, sh.xs, wv, sh.k, sh.cout, sh.pad);
          const dyv = random(y64.length, 13);
          const x = tf.tensor4d(xv, sh.xs as [number, number, number, number]);
          const w = tf.tensor4d(wv, [sh.k, sh.k, sh.xs[3] as number, sh.cout]);
          const y = tf.conv2d(x, w, 1, sh.pad);
          const dy = tf.tensor(dyv, y.shape);
          const dw = tf.engine().runKernel('Conv2DBackpropFilter', { x, dy },
            { strides: 1, pad: sh.pad, dataFormat: 'NHWC', filterShape: w.shape }) as tf.Tensor;
          // float32 sums of ≤ a few hundred terms: relative errors near 1e-7, far below 1e-5.
          expect(relativeError(y.dataSync(), y64)).toBeLessThan(1e-5);
          if (sh.k === 1) {
            // the recomputing modes' route: products through BatchMatMul, a [P, cin] in every layout
            const p = sh.xs[0]! * sh.xs[1]! * sh.xs[2]!;
            const cin = sh.xs[3]!;
            const x2 = tf.reshape(x, [p, cin]) as tf.Tensor2D;
            const w2 = tf.reshape(w, [cin, sh.cout]) as tf.Tensor2D;
            const big = tf.tile(x2, [8, 4]) as tf.Tensor2D; // [8P, 4cin]: large enough for the GEMM route
            const wBig = tf.tile(w2, [4, 1]) as tf.Tensor2D;
            const exactBig = new Float64Array(8 * p * sh.cout);
            for (let r = 0; r < 8 * p; r++) for (let co = 0; co < sh.cout; co++) exactBig[r * sh.cout + co] = 4 * (y64[(r % p) * sh.cout + co] as number);
            const products = [
              tf.matMul(big, wBig),
              tf.matMul(tf.transpose(big), wBig, true, false),
              tf.matMul(big, tf.transpose(wBig), false, true),
            ];
            for (const product of products) expect(relativeError(product.dataSync(), exactBig)).toBeLessThan(1e-5);
            tf.dispose([x2, w2, big, wBig, ...products]);
          }
          expect(relativeError(dw.dataSync(), filterGrad64(xv, sh.xs, dyv, sh.k, sh.cout, sh.pad))).toBeLessThan(1e-5);
          tf.dispose([x, w, y, dy, dw]);
        } finally {
          setGemmRoute('filterGrad', previous.filterGrad);
          setGemmRoute('conv1x1', previous.conv1x1);
          setGemmRoute('matMul', previousMatMul);
          setGemmRoute('convKxK', previousKxK);
          setGemmBuild(null);
        }
      });
    }
  }
});
