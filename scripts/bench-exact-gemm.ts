/**
 * GFLOP/s of the float64-accumulating `exact` wasm kernels against the `fast` path (XNNPACK and the project's own float32 GEMM), alternated in one
 * process on DenseNet-121 112² batch-16 shapes: 1×1 convolutions as products [M, K]·[K, N], the 3×3
 * convolution forward, and the filter / input gradients of both. Prints min and median ms and GFLOP/s per path.
 *
 *   node --import tsx scripts/bench-exact-gemm.ts [--reps 5] [--only <regex over case labels>]
 */
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../src/backend/index.js';
import { registerWasmExactKernels, unregisterWasmExactKernels } from '../src/backend/wasm/exact/register.js';

const repsAt = process.argv.indexOf('--reps');
const reps = repsAt >= 0 ? Number(process.argv[repsAt + 1]) : 5;
const onlyAt = process.argv.indexOf('--only');
const only = onlyAt >= 0 ? new RegExp(process.argv[onlyAt + 1]!) : null;

function median(v: number[]): number {
  const s = [...v].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}

await initBackend('wasm');

interface Case { label: string; flops: number; run: () => tf.Tensor }
const conv = (n: number, hw: number, ci: number, k: number, co: number): Case[] => {
  const x = tf.randomNormal([n, hw, hw, ci]) as tf.Tensor4D;
  const w = tf.randomNormal([k, k, ci, co]) as tf.Tensor4D;
  const dy = tf.randomNormal([n, hw, hw, co]) as tf.Tensor4D;
  const flops = 2 * n * hw * hw * ci * co * k * k;
  const tag = `${k}×${k} ${n}·${hw}²·${ci}→${co}`;
  return [
    { label: `conv ${tag}`, flops, run: () => tf.conv2d(x, w, 1, 'same') },
    { label: `dW ${tag}`, flops, run: () => tf.engine().runKernel(tf.Conv2DBackpropFilter, { x, dy },
      { strides: 1, pad: 'same', dataFormat: 'NHWC', filterShape: [k, k, ci, co] } as unknown as tf.NamedAttrMap) as tf.Tensor },
    { label: `dX ${tag}`, flops, run: () => tf.engine().runKernel(tf.Conv2DBackpropInput, { dy, filter: w },
      { strides: 1, pad: 'same', dataFormat: 'NHWC', inputShape: [n, hw, hw, ci] } as unknown as tf.NamedAttrMap) as tf.Tensor },
  ];
};
const cases: Case[] = [
  ...conv(16, 56, 256, 1, 128),
  ...conv(16, 56, 128, 3, 32),
  ...conv(16, 28, 512, 1, 128),
  ...conv(16, 14, 1024, 1, 128),
  ...conv(16, 7, 1024, 1, 128),
];
{
  const a = tf.randomNormal([16, 1024]) as tf.Tensor2D;
  const b = tf.randomNormal([1024, 1000]) as tf.Tensor2D;
  cases.push({ label: 'matMul 16·1024·1000 (classifier)', flops: 2 * 16 * 1024 * 1000, run: () => tf.matMul(a, b) });
}

const paths = [
  { label: 'fast', on: () => unregisterWasmExactKernels() },
  { label: 'exact', on: () => registerWasmExactKernels() },
];
console.log(`wasm, ${reps} alternated reps after one warm-up each; ms min/median, GFLOP/s at the min`);
for (const c of cases.filter((c) => only == null || only.test(c.label))) {
  const times: number[][] = paths.map(() => []);
  for (let r = -1; r < reps; r++) {
    for (const p of r % 2 === 0 ? [0, 1] : [1, 0]) {
      paths[p]!.on();
      const t0 = performance.now();
      const y = c.run();
      y.dataSync();
      const dt = performance.now() - t0;
      y.dispose();
      if (r >= 0) times[p]!.push(dt);
    }
  }
  const cols = paths.map((p, i) => {
    const min = Math.min(...times[i]!);
    return `${p.label} ${min.toFixed(0)}/${median(times[i]!).toFixed(0)} ms ${(c.flops / min / 1e6).toFixed(1)} GF/s`;
  });
  const ratio = Math.min(...times[1]!) / Math.min(...times[0]!);
  console.log(`${c.label.padEnd(34)} ${cols.join('  |  ')}  exact/fast ${ratio.toFixed(2)}×`);
}
