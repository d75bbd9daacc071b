/**
 * tfjs's error op by op against float64, beside PyTorch float32's, on the per-op references of
 * scripts/dump_float64_ops.py (teacher forcing: every op gets the float64 run's inputs rounded to float32).
 * Each Conv2d by the naive route (tf.conv2d and its backprop kernels) and, for 1×1 convolutions, the
 * recomputing modes' route (matMul, matMulTransposeA/B); each BatchNorm by batchStats → x·scale + shift and
 * batchNormBackward (every mode's formulas). Prints per op kind the median and max of ours / PyTorch's error
 * and the ops where ours exceeds PyTorch's most. An error measurement, not a timing.
 *
 *   npx tsx scripts/op-errors.ts DUMP_DIR [--backend cpu|wasm] [--top 12] [--routes gemm|xnnpack] [--gemm-build relaxed|plain]
 *                                [--cpu-kernels exact|stock]
 *
 * --routes puts every wasm kernel that has an own-GEMM route (src/backend/wasm/gemm/routes.ts: filter
 * gradients, 1×1 and k×k convolutions, batch-1 products) on that route (default: the library's 'auto');
 * --gemm-build pins the own GEMM's build (default: relaxed where the engine has it); --cpu-kernels stock runs
 * tfjs-backend-cpu's own convolutions and products instead of src/backend/cpu's exact ones (the before of #23).
 */
import { readFile } from 'node:fs/promises';
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../src/backend/index.js';
import { unregisterCpuExactKernels } from '../src/backend/cpu/index.js';
import { batchNormBackward, batchStats } from '../src/norm/batch-norm.js';
import { conv2dBackpropFilter, conv2dBackpropInput } from '../src/ops/kernels.js';
import { matMulTransposeA, matMulTransposeB } from '../src/ops/matmul.js';
import { conv1x1 } from '../src/recompute/dense-ops.js';
import { readSafetensors } from '../src/weights/safetensors.js';
import { setGemmBuild } from '../src/backend/wasm/gemm/gemm.js';
import { GEMM_KERNELS, setGemmRoute } from '../src/backend/wasm/gemm/routes.js';

const args = process.argv.slice(2);
function option(name: string, fallback: string): string {
  const i = args.indexOf(`--${name}`);
  return i >= 0 && args[i + 1] ? args.splice(i, 2)[1]! : fallback;
}
const backend = option('backend', 'wasm');
const top = Number(option('top', '12'));
const routes = option('routes', '');
const build = option('gemm-build', '');
// `stock`: tfjs-backend-cpu's own float32 convolutions and products instead of ours (the before of src/backend/cpu).
const cpuKernels = option('cpu-kernels', 'exact');
const dir = args[0]!;
await initBackend(backend as 'cpu' | 'wasm');
if (backend === 'cpu' && cpuKernels === 'stock') unregisterCpuExactKernels();
if (routes === 'gemm' || routes === 'xnnpack') for (const kernel of GEMM_KERNELS) setGemmRoute(kernel, routes);
if (build === 'relaxed' || build === 'plain') setGemmBuild(build);

interface Entry { name: string; file: string; kind: 'bn' | 'conv'; torch: Record<string, number>; kernel?: number; stride?: number; padding?: number }
const index = JSON.parse(await readFile(`${dir}/index.json`, 'utf8')) as Entry[];

function relL2(got: ArrayLike<number>, hi: Float32Array, lo: Float32Array): number {
  let d = 0;
  let s = 0;
  for (let i = 0; i < hi.length; i++) {
    const e = hi[i]! + lo[i]!;
    d += (got[i]! - e) ** 2;
    s += e * e;
  }
  return Math.sqrt(d / Math.max(s, 1e-300));
}

const nhwc = (t: tf.Tensor) => tf.transpose(t, [0, 2, 3, 1]) as tf.Tensor4D;
const nchwData = (t: tf.Tensor) => tf.tidy(() => tf.transpose(t, [0, 3, 1, 2]).dataSync());
const oihwData = (t: tf.Tensor) => tf.tidy(() => tf.transpose(t, [3, 2, 0, 1]).dataSync());

const rows: { name: string; kind: string; ratio: number; ours: number; torch: number }[] = [];
for (const e of index) {
  const file = await readSafetensors(`${dir}/${e.file}`);
  const get = (k: string) => file.tensors.get(k)!;
  const t = (k: string) => tf.tensor(get(k).data, get(k).shape);
  const check = (kind: string, got: ArrayLike<number>, key: string) => {
    const ours = relL2(got, get(`${key}.hi`).data, get(`${key}.lo`).data);
    const torch = e.torch[key]!;
    rows.push({ name: e.name, kind, ratio: ours / torch, ours, torch });
  };
  tf.tidy(() => {
    const x = nhwc(t('x'));
    const dy = nhwc(t('dy'));
    if (e.kind === 'bn') {
      const gamma = t('weight') as tf.Tensor1D;
      const norm = { gamma, beta: t('bias') as tf.Tensor1D, record: () => undefined };
      const stats = batchStats(x, norm);
      const g = batchNormBackward(dy, x, gamma, stats);
      check('bn dx', nchwData(g.dx), 'dx');
      check('bn dgamma', g.dGamma.dataSync(), 'dw');
      check('bn dbeta', g.dBeta.dataSync(), 'db');
      return;
    }
    const w = tf.transpose(t('weight'), [2, 3, 1, 0]) as tf.Tensor4D;
    const k = e.kernel!;
    const s = e.stride!;
    const p = e.padding!;
    const pad = [[0, 0], [p, p], [p, p], [0, 0]] as [[number, number], [number, number], [number, number], [number, number]];
    const label = `conv${k}x${k}${s > 1 ? `/${s}` : ''}`;
    check(`${label} y (conv2d)`, nchwData(tf.conv2d(x, w, s, pad)), 'y');
    check(`${label} dx (backpropInput)`, nchwData(conv2dBackpropInput(dy, w, x.shape, s, pad)), 'dx');
    check(`${label} dw (backpropFilter)`, oihwData(conv2dBackpropFilter(x, dy, w.shape, s, pad)), 'dw');
    if (k === 1 && s === 1) {
      const [n, h, wd, c] = x.shape;
      const cout = w.shape[3];
      const xf = tf.reshape(x, [n * h * wd, c]) as tf.Tensor2D;
      const dyf = tf.reshape(dy, [n * h * wd, cout]) as tf.Tensor2D;
      check(`${label} y (matMul)`, nchwData(conv1x1(x, w)), 'y');
      check(`${label} dx (matMulTransposeB)`, nchwData(tf.reshape(matMulTransposeB(dyf, tf.reshape(w, [c, cout]) as tf.Tensor2D), x.shape)), 'dx');
      check(`${label} dw (matMulTransposeA)`, oihwData(tf.reshape(matMulTransposeA(xf, dyf), w.shape)), 'dw');
    }
  });
}

const kinds = [...new Set(rows.map((r) => r.kind))];
const f = (v: number) => v.toExponential(1);
const med = (v: number[]) => { const s = [...v].sort((a, b) => a - b); return s[Math.floor(s.length / 2)]!; };
console.log(`${backend}${routes ? ` (own-GEMM routes: all ${routes})` : ''}${build ? ` (GEMM build ${build})` : ''}: ours / PyTorch float32, relative L2 against float64, per op kind (teacher forcing)`);
console.log('| op | count | median ours | median PyTorch | median ratio | max ratio |\n|---|---:|---:|---:|---:|---:|');
for (const kind of kinds) {
  const r = rows.filter((x) => x.kind === kind);
  console.log(`| ${kind} | ${r.length} | ${f(med(r.map((x) => x.ours)))} | ${f(med(r.map((x) => x.torch)))} | ${med(r.map((x) => x.ratio)).toFixed(2)} | ${Math.max(...r.map((x) => x.ratio)).toFixed(2)} |`);
}
console.log(`\nworst ${top}:`);
for (const r of [...rows].sort((a, b) => b.ratio - a.ratio).slice(0, top)) console.log(`  ${r.name} ${r.kind}: ${f(r.ours)} vs ${f(r.torch)} (${r.ratio.toFixed(2)}×)`);
