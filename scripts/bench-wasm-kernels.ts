/**
 * Throughput of the wasm backend's convolution/matmul kernels, stock versus
 * src/backend/wasm/, on DenseNet-121 training shapes (batch 8).
 *
 *   npx tsx scripts/bench-wasm-kernels.ts [--reps N] [--quick]
 *
 * Each number is the best of N runs (default 3) after one warm-up, so it
 * includes per-call costs a training step also pays (XNNPACK weight packing
 * for fresh operands, intermediate allocation). GFLOP/s counts 2·MACs of the
 * mathematical operation, never extra work an implementation does.
 */
import * as os from 'node:os';
import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';
import { matMulTransposeA } from '../src/ops/matmul.js';
import {
  registerWasmFastOverrides,
  registerWasmTrainingKernels,
  unregisterWasmFastOverrides,
} from '../src/backend/wasm/index.js';

const args = process.argv.slice(2);
const repsArg = args.indexOf('--reps');
const REPS = repsArg >= 0 ? Number(args[repsArg + 1]) : 3;
const QUICK = args.includes('--quick');

function bestMs(f: () => tf.Tensor): number {
  let best = Number.POSITIVE_INFINITY;
  for (let i = 0; i <= REPS; i++) {
    const t0 = performance.now();
    const r = f();
    r.dataSync();
    const dt = performance.now() - t0;
    r.dispose();
    if (i > 0) best = Math.min(best, dt);
  }
  return best;
}

function fmt(flops: number, ms: number): string {
  return `${ms.toFixed(1).padStart(7)} ms ${(flops / ms / 1e6).toFixed(1).padStart(6)} GFLOP/s`;
}

interface ConvCase {
  name: string;
  x: [number, number, number, number];
  f: [number, number, number, number];
  strides: number;
  pad: 'same' | 'valid' | number | [[number, number], [number, number], [number, number], [number, number]];
  backpropInput: boolean;
}

const convCases: ConvCase[] = [
  { name: 'stem 7x7/2 3->64 @224', x: [8, 224, 224, 3], f: [7, 7, 3, 64], strides: 2, pad: [[0, 0], [3, 3], [3, 3], [0, 0]], backpropInput: false },
  { name: '1x1 256->128 @56', x: [8, 56, 56, 256], f: [1, 1, 256, 128], strides: 1, pad: 'valid', backpropInput: true },
  { name: '1x1 512->128 @28', x: [8, 28, 28, 512], f: [1, 1, 512, 128], strides: 1, pad: 'valid', backpropInput: true },
  { name: '1x1 1024->128 @14', x: [8, 14, 14, 1024], f: [1, 1, 1024, 128], strides: 1, pad: 'valid', backpropInput: true },
  { name: '3x3 128->32 @56', x: [8, 56, 56, 128], f: [3, 3, 128, 32], strides: 1, pad: 1, backpropInput: true },
  { name: '3x3 128->32 @28', x: [8, 28, 28, 128], f: [3, 3, 128, 32], strides: 1, pad: 1, backpropInput: true },
  { name: '3x3 128->32 @14', x: [8, 14, 14, 128], f: [3, 3, 128, 32], strides: 1, pad: 1, backpropInput: true },
  { name: '3x3 128->32 @7', x: [8, 7, 7, 128], f: [3, 3, 128, 32], strides: 1, pad: 1, backpropInput: true },
];

function convFlops(c: ConvCase, outShape: number[]): number {
  return 2 * sizeOf(outShape) * c.f[0] * c.f[1] * c.f[2];
}

function sizeOf(s: number[]): number {
  return s.reduce((a, b) => a * b, 1);
}

async function main(): Promise<void> {
  await tf.setBackend('wasm');
  await tf.ready();
  const registered = registerWasmTrainingKernels();
  console.log(`tfjs ${tf.version.tfjs}, backend ${tf.getBackend()}, SIMD ${String(await tf.env().getAsync('WASM_HAS_SIMD_SUPPORT'))}, ` +
    `threads ${String(await tf.env().getAsync('WASM_HAS_MULTITHREAD_SUPPORT'))}; registered: [${registered.join(', ')}]; best of ${REPS}; ` +
    `${os.cpus().length} CPUs, load average ${os.loadavg().map((l) => l.toFixed(1)).join(' ')}`);

  console.log('\n== convolution (forward | backprop input stock -> fast | backprop filter)');
  for (const c of QUICK ? convCases.slice(1, 6) : convCases) {
    const x = tf.randomNormal(c.x) as tf.Tensor4D;
    const f = tf.randomNormal(c.f, 0, 0.1) as tf.Tensor4D;
    const y = tf.conv2d(x, f, c.strides, c.pad);
    const dy = tf.randomNormal(y.shape) as tf.Tensor4D;
    const flops = convFlops(c, y.shape);
    y.dispose();
    const fwd = bestMs(() => tf.conv2d(x, f, c.strides, c.pad));
    const bInput = (): tf.Tensor => tf.engine().runKernel('Conv2DBackpropInput', { dy, filter: f },
      { strides: c.strides, pad: c.pad, dataFormat: 'NHWC', inputShape: c.x }) as tf.Tensor;
    const bFilter = (): tf.Tensor => tf.engine().runKernel('Conv2DBackpropFilter', { x, dy },
      { strides: c.strides, pad: c.pad, dataFormat: 'NHWC', filterShape: c.f }) as tf.Tensor;
    let inputLine = '';
    if (c.backpropInput) {
      const stock = bestMs(bInput);
      registerWasmFastOverrides();
      const fast = bestMs(bInput);
      unregisterWasmFastOverrides();
      inputLine = `bpInput stock ${fmt(flops, stock)} -> fast ${fmt(flops, fast)}`;
    }
    const filt = bestMs(bFilter);
    console.log(`${c.name.padEnd(22)} fwd ${fmt(flops, fwd)} | ${inputLine || 'bpInput (not needed)'.padEnd(73)} | bpFilter ${fmt(flops, filt)}`);
    tf.dispose([x, f, dy]);
  }

  // In training b (the output gradient) is a new tensor every step, and the
  // wasm BatchMatMul caches XNNPACK's packing of b per tensor: every variant
  // but the first therefore multiplies by a fresh copy of b (copy included).
  console.log('\n== matmul aᵀ·b, a [K,M], b [K,N] (b fresh per call unless noted)');
  const mmCases: [number, number, number][] = QUICK
    ? [[6272, 256, 128]]
    : [[6272, 256, 128], [25088, 256, 128], [25088, 128, 32], [1568, 1024, 128], [8, 1024, 1000]];
  for (const [k, m, n] of mmCases) {
    const a = tf.randomNormal([k, m]) as tf.Tensor2D;
    const b = tf.randomNormal([k, n]) as tf.Tensor2D;
    const aT = tf.transpose(a) as tf.Tensor2D;
    const flops = 2 * k * m * n;
    const fresh = (): tf.Tensor2D => tf.add(b, 0);
    const plainCached = bestMs(() => tf.matMul(aT, b));
    const plainFresh = bestMs(() => tf.tidy(() => tf.matMul(aT, fresh())));
    const stockTA = bestMs(() => tf.tidy(() => tf.matMul(a, fresh(), true, false)));
    const explicitT = bestMs(() => tf.tidy(() => tf.matMul(tf.transpose(a), fresh())));
    const fastTA = bestMs(() => tf.tidy(() => matMulTransposeA(a, fresh())));
    registerWasmFastOverrides();
    const overTA = bestMs(() => tf.tidy(() => tf.matMul(a, fresh(), true, false)));
    unregisterWasmFastOverrides();
    console.log(`K=${k} M=${m} N=${n}: [M,K]·[K,N] b cached ${fmt(flops, plainCached)} | b fresh ${fmt(flops, plainFresh)} || aᵀ·b: ` +
      `transposeA stock ${fmt(flops, stockTA)} | transpose+matMul ${fmt(flops, explicitT)} | ` +
      `matMulTransposeA (1x1 filter grad) ${fmt(flops, fastTA)} | transposeA with override ${fmt(flops, overTA)}`);
    tf.dispose([a, b, aT]);
  }

  console.log('\n== pooling backward (stock -> fast override)');
  const poolCases: { name: string; x: [number, number, number, number]; kind: 'max' | 'avg'; k: number; s: number; pad: 'same' | 'valid' | number }[] = [
    { name: 'maxPool 3x3/2 @112 (stem)', x: [8, 112, 112, 64], kind: 'max', k: 3, s: 2, pad: 1 },
    { name: 'avgPool 2x2/2 @56 (transition)', x: [8, 56, 56, 128], kind: 'avg', k: 2, s: 2, pad: 'valid' },
  ];
  for (const p of poolCases) {
    const x = tf.randomNormal(p.x) as tf.Tensor4D;
    const y = p.kind === 'max' ? tf.maxPool(x, p.k, p.s, p.pad) : tf.avgPool(x, p.k, p.s, p.pad);
    const dy = tf.randomNormal(y.shape);
    const fwd = bestMs(() => (p.kind === 'max' ? tf.maxPool(x, p.k, p.s, p.pad) : tf.avgPool(x, p.k, p.s, p.pad)));
    const grad = (): tf.Tensor => (p.kind === 'max'
      ? tf.engine().runKernel('MaxPoolGrad', { dy, input: x, output: y }, { filterSize: p.k, strides: p.s, pad: p.pad })
      : tf.engine().runKernel('AvgPoolGrad', { dy, input: x }, { filterSize: p.k, strides: p.s, pad: p.pad })) as tf.Tensor;
    const stock = bestMs(grad);
    registerWasmFastOverrides();
    const fast = bestMs(grad);
    unregisterWasmFastOverrides();
    console.log(`${p.name.padEnd(32)} forward ${fwd.toFixed(1)} ms | backward stock ${stock.toFixed(1)} ms -> fast ${fast.toFixed(1)} ms`);
    tf.dispose([x, y, dy]);
  }
}

await main();
