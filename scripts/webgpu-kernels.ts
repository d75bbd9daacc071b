/**
 * The webgpu training kernels against the adapter's own matMul: for every convolution-gradient shape a
 * DenseNet-121 / -201 training step runs, ours (src/backend/webgpu/kernels), tfjs-backend-webgpu's stock
 * kernel and `tf.matMul` of the same M×K·K×N (so the same FLOPs), in GFLOP/s, and ours/matMul. Pooling
 * gradients and the BN-ReLU element-wise work do almost no arithmetic, so a GFLOP/s figure says nothing
 * about them: they are measured in GB/s (the bytes they must read and write) against a plain copy kernel
 * moving the same bytes on the same adapter. Relative to the adapter, so the ratios carry over to a GPU.
 *
 *   npx tsx scripts/webgpu-kernels.ts [--models densenet121,densenet201] [--image-size 64] [--batch 4]
 *                                     [--repeats 5] [--only filter|input|pool|elementwise] [--json]
 *
 * Each sample runs a kernel enough times back to back to take ≥ --sample-ms (default 40) of wall time,
 * then waits for the last result; configurations alternate within every repeat; min and median are kept.
 * 1×1 gradients: the naive mode's (tf.conv2d's backward); the recomputing modes run 1×1 as matMul.
 * Rows marked (tfjs's) are stock kernels kept because they already meet the bar; the ratio is then theirs.
 */
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../src/backend/index.js';
import { registerWebGPUTrainingKernels, unregisterWebGPUTrainingKernels } from '../src/backend/webgpu/index.js';
import { VARIANTS, type DenseNetVariant } from '../src/layers/config.js';
import { conv2dBackpropFilter, conv2dBackpropInput, maxPoolGrad, avgPoolGrad } from '../src/ops/kernels.js';
import { copyKernel } from '../src/backend/webgpu/kernels/copy.js';

const argv = process.argv.slice(2);
const flag = (name: string, fallback: string): string => {
  const i = argv.indexOf(`--${name}`);
  return i >= 0 && argv[i + 1] !== undefined ? argv[i + 1]! : fallback;
};
const positive = (name: string, fallback: string): number => {
  const value = Number(flag(name, fallback));
  if (!Number.isInteger(value) || value < 1) throw new Error(`--${name} must be a positive integer; got '${flag(name, fallback)}'`);
  return value;
};
const models = flag('models', 'densenet121,densenet201').split(',') as DenseNetVariant[];
for (const m of models) if (!(m in VARIANTS)) throw new Error(`--models: each must be one of ${Object.keys(VARIANTS).join(', ')}; got '${m}'`);
const size = positive('image-size', '64');
const batch = positive('batch', '4');
const repeats = positive('repeats', '5');
const sampleMs = positive('sample-ms', '40');
const only = flag('only', '');
const json = argv.includes('--json');

type Shape4 = [number, number, number, number];
type Kind = 'filter' | 'input' | 'pool' | 'elementwise';
interface Case {
  kind: Kind;
  name: string;
  where: string;
  /** Work: FLOPs for convolutions (2·M·N·K), bytes for the bandwidth rows. */
  work: number;
  ours: () => tf.Tensor;
  /** The kernels ours replaces in this call: the stock column runs `ours` with tfjs-webgpu's own put back. */
  replaces: string[];
  /** The yardstick: matMul of the same dimensions, or a copy of the same bytes. */
  reference: () => tf.Tensor;
}

/** The distinct convolution / pooling shapes of one DenseNet step at this size (torchvision's layout). */
function shapes(variant: DenseNetVariant): Array<{ kind: 'conv' | 'maxpool' | 'avgpool'; x: Shape4; f?: Shape4; stride: number; pad: number; where: string; dx: boolean }> {
  const { growthRate: g, numInitFeatures: c0, blockConfig } = VARIANTS[variant];
  const out: ReturnType<typeof shapes> = [];
  const stem = Math.ceil(size / 2);
  out.push({ kind: 'conv', x: [batch, size, size, 3], f: [7, 7, 3, c0], stride: 2, pad: 3, where: 'stem', dx: false });
  out.push({ kind: 'maxpool', x: [batch, stem, stem, c0], stride: 2, pad: 1, where: 'stem pool', dx: true });
  let hw = Math.ceil(stem / 2);
  let c = c0;
  blockConfig.forEach((layers, b) => {
    const block = `block ${b + 1}`;
    // First and last layer's 1×1 (the widest); every layer's 3×3 has the same shape.
    for (const i of [0, layers - 1]) out.push({ kind: 'conv', x: [batch, hw, hw, c + i * g], f: [1, 1, c + i * g, 4 * g], stride: 1, pad: 0, where: `${block} layer ${i + 1} 1×1`, dx: true });
    out.push({ kind: 'conv', x: [batch, hw, hw, 4 * g], f: [3, 3, 4 * g, g], stride: 1, pad: 1, where: `${block} 3×3`, dx: true });
    c += layers * g;
    if (b < blockConfig.length - 1) {
      out.push({ kind: 'conv', x: [batch, hw, hw, c], f: [1, 1, c, c / 2], stride: 1, pad: 0, where: `transition ${b + 1} 1×1`, dx: true });
      out.push({ kind: 'avgpool', x: [batch, hw, hw, c / 2], stride: 2, pad: 0, where: `transition ${b + 1} pool`, dx: true });
      c /= 2;
      hw = Math.floor(hw / 2);
    }
  });
  return out;
}

function cases(): Case[] {
  const seen = new Map<string, Case>();
  const add = (key: string, where: string, make: () => Case) => {
    const existing = seen.get(key);
    if (existing) existing.where += `, ${where}`;
    else seen.set(key, make());
  };
  const rand = (shape: number[], seed: number) => tf.randomNormal(shape, 0, 1, 'float32', seed);
  for (const variant of models) {
    for (const s of shapes(variant)) {
      const where = `${variant.replace('densenet', 'DN')} ${s.where}`;
      if (s.kind === 'conv') {
        const f = s.f!;
        const label = `${f[0]}×${f[1]}/${s.stride} ${f[2]}→${f[3]} @${s.x[1]}²`;
        const x = rand(s.x, 1) as tf.Tensor4D;
        const w = rand(f, 2) as tf.Tensor4D;
        const yShape = tf.conv2d(x, w, s.stride, s.pad).shape;
        const dy = rand(yShape, 3) as tf.Tensor4D;
        const positions = yShape[0] * yShape[1] * yShape[2];
        const filterM = f[0] * f[1] * f[2];
        add(`filter ${label}`, where, () => ({
          kind: 'filter', name: `dW ${label}`, where, work: 2 * filterM * f[3] * positions,
          ours: () => conv2dBackpropFilter(x, dy, f, s.stride, s.pad), replaces: [tf.Conv2DBackpropFilter],
          reference: () => tf.matMul(mmA(filterM, positions), mmB(positions, f[3])),
        }));
        if (s.dx) {
          const inM = s.x[0] * s.x[1] * s.x[2];
          const inK = f[0] * f[1] * f[3];
          // tfjs's own dx (conv_backprop_mm, an implicit GEMM on its matMul source) is kept: no stock column.
          add(`input ${label}`, where, () => ({
            kind: 'input', name: `dx ${label} (tfjs's)`, replaces: [], where, work: 2 * inM * f[2] * inK,
            ours: () => conv2dBackpropInput(dy, w, s.x, s.stride, s.pad),
            reference: () => tf.matMul(mmA(inM, inK), mmB(inK, f[2])),
          }));
        }
      } else {
        const window = s.kind === 'maxpool' ? 3 : 2;
        const label = `${s.kind === 'maxpool' ? 'MaxPoolGrad' : 'AvgPoolGrad'} ${window}×${window}/${s.stride} ${s.x[3]} @${s.x[1]}²`;
        const x = rand(s.x, 4) as tf.Tensor4D;
        const y = s.kind === 'maxpool' ? tf.maxPool(x, window, s.stride, s.pad) : tf.avgPool(x, window, s.stride, 0);
        const dy = rand(y.shape, 5) as tf.Tensor4D;
        const xBytes = 4 * x.size;
        const dyBytes = 4 * dy.size;
        // Bytes a pooling gradient must move: read dy (and x, y for max), write dx.
        const bytes = s.kind === 'maxpool' ? 2 * xBytes + 2 * dyBytes : xBytes + dyBytes;
        add(label, where, () => ({
          kind: 'pool', name: label, where, work: bytes,
          ours: () => (s.kind === 'maxpool' ? maxPoolGrad(dy, x, y as tf.Tensor4D, window, s.stride, s.pad) : avgPoolGrad(dy, x, window, s.stride, 0)),
          replaces: [s.kind === 'maxpool' ? tf.MaxPoolGrad : tf.AvgPoolGrad],
          reference: () => copyOf(bytes),
        }));
        if (s.kind === 'maxpool') elementwise(x, where.replace('stem pool', 'stem BN-ReLU'), add);
      }
    }
  }
  return [...seen.values()];
}

/**
 * The kernels of the BN-ReLU work on one activation, one row each (src/norm runs them as separate tfjs ops):
 * the scale and shift by a per-channel vector (Multiply, Add; Sub runs the same kernel), ReLU, its mask (Step) and the mask's product
 * with dy, and the per-channel statistics (Sum, Mean over N, H, W). Bytes: what each must read and write.
 */
function elementwise(x: tf.Tensor4D, where: string, add: (key: string, where: string, make: () => Case) => void): void {
  const c = x.shape[3];
  const scale = tf.randomNormal([c], 1, 0.1, 'float32', 6);
  const shift = tf.randomNormal([c], 0, 0.1, 'float32', 7);
  const dy = tf.randomNormal(x.shape, 0, 1, 'float32', 8);
  const mask = tf.step(x);
  const bytes = 4 * x.size;
  const at = `[${x.shape.join(',')}]`;
  const rows: Array<[string, number, () => tf.Tensor, string[]]> = [
    ['Multiply x·scale[c]', 2 * bytes, () => tf.mul(x, scale), [tf.Multiply]],
    ['Add x+shift[c]', 2 * bytes, () => tf.add(x, shift), [tf.Add]],
    ['Relu', 2 * bytes, () => tf.relu(x), []],
    ['Step', 2 * bytes, () => tf.step(x), []],
    ['Multiply dy·mask', 3 * bytes, () => tf.mul(dy, mask), [tf.Multiply]],
    ['Sum over N,H,W', bytes, () => tf.sum(x, [0, 1, 2]), [tf.Sum]],
    ['Mean over N,H,W', bytes, () => tf.mean(x, [0, 1, 2]), [tf.Mean]],
  ];
  for (const [name, work, run, replaces] of rows) {
    add(`ew ${name} ${at}`, where, () => ({
      kind: 'elementwise', name: `${name} ${at}${replaces.length ? '' : " (tfjs's)"}`, where, work,
      ours: run, replaces, reference: () => copyOf(work),
    }));
  }
}

const operands = new Map<string, tf.Tensor2D>();
function operand(rows: number, cols: number): tf.Tensor2D {
  const key = `${rows}x${cols}`;
  let t = operands.get(key);
  if (!t) operands.set(key, (t = tf.randomNormal([rows, cols], 0, 1, 'float32', 9) as tf.Tensor2D));
  return t;
}
const mmA = operand;
const mmB = operand;
const copies = new Map<number, tf.Tensor>();
/** A source whose copy reads half of `bytes` and writes the other half (inputs live for the whole run). */
function copySource(bytes: number): tf.Tensor {
  const n = Math.max(1, Math.round(bytes / 8));
  let t = copies.get(n);
  if (!t) copies.set(n, (t = tf.randomNormal([n], 0, 1, 'float32', 10)));
  return t;
}
function copyOf(bytes: number): tf.Tensor {
  return copyKernel(copySource(bytes));
}

/**
 * Milliseconds per call, wall and CPU: `calls` calls back to back, then a wait for the last result. The CPU
 * time is the whole process's (a software adapter's worker threads run in it): on a loaded machine it counts
 * the work done rather than the time other processes held the cores, so its ratios are the steadier ones.
 */
async function sample(f: () => tf.Tensor, calls: number): Promise<{ wall: number; cpu: number }> {
  const start = performance.now();
  const cpu0 = process.cpuUsage();
  let last: tf.Tensor | undefined;
  for (let i = 0; i < calls; i++) {
    last?.dispose();
    last = f();
  }
  await last!.data();
  last!.dispose();
  const cpu = process.cpuUsage(cpu0);
  return { wall: (performance.now() - start) / calls, cpu: (cpu.user + cpu.system) / 1000 / calls };
}

/** How many calls fill one sample (from one timed call after a warm-up that compiles the pipeline). */
async function callsPerSample(f: () => tf.Tensor): Promise<number> {
  await sample(f, 1);
  const ms = (await sample(f, 1)).wall;
  return Math.max(1, Math.min(200, Math.round(sampleMs / Math.max(ms, 0.01))));
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

interface Rate { min: number; median: number }
interface Row {
  kind: Kind; name: string; where: string; unit: 'GFLOP/s' | 'GB/s';
  /** Work per wall second, from the fastest and the median sample. */
  ours: Rate; stock: Rate | null; reference: Rate;
  /** ours / reference from the fastest samples: by wall time, and by the process's CPU time. */
  ratio: number; cpuRatio: number;
}

async function measure(c: Case): Promise<Row> {
  const configs: Array<['ours' | 'stock' | 'reference', () => tf.Tensor]> = [['ours', c.ours], ['reference', c.reference]];
  if (c.replaces.length > 0) {
    // tfjs's stock kernel: ours unregistered for the call (the engine looks kernels up per call).
    configs.push(['stock', () => { unregisterWebGPUTrainingKernels(c.replaces); try { return c.ours(); } finally { registerWebGPUTrainingKernels(); } }]);
  }
  const times = new Map<string, Array<{ wall: number; cpu: number }>>();
  const calls = new Map<string, number>();
  for (const [name, f] of configs) { calls.set(name, await callsPerSample(f)); times.set(name, []); }
  for (let r = 0; r < repeats; r++) {
    for (const [name, f] of r % 2 ? [...configs].reverse() : configs) times.get(name)!.push(await sample(f, calls.get(name)!));
  }
  const best = (name: string, clock: 'wall' | 'cpu') => Math.min(...times.get(name)!.map((t) => t[clock]));
  // work per ms × 1e-6 = G per s
  const rate = (name: string): Rate | null => {
    const t = times.get(name);
    return t ? { min: (c.work / best(name, 'wall')) * 1e-6, median: (c.work / median(t.map((x) => x.wall))) * 1e-6 } : null;
  };
  return {
    kind: c.kind, name: c.name, where: c.where, unit: c.kind === 'filter' || c.kind === 'input' ? 'GFLOP/s' : 'GB/s',
    ours: rate('ours')!, stock: rate('stock'), reference: rate('reference')!,
    ratio: best('reference', 'wall') / best('ours', 'wall'), cpuRatio: best('reference', 'cpu') / best('ours', 'cpu'),
  };
}

const backend = await initBackend('webgpu');
if (backend !== 'webgpu') throw new Error('no webgpu backend');
const all = cases().filter((c) => only === '' || c.kind === only);
const rows: Row[] = [];
if (!json) {
  console.log(`DenseNet ${models.join(', ')} training-step shapes, ${size}², batch ${batch}; cells: fastest / median of ${repeats} samples`);
  console.log('| kernel | unit | ours | tfjs stock | reference | ours/ref (wall) | ours/ref (CPU time) | where |');
  console.log('|---|---|---:|---:|---:|---:|---:|---|');
}
for (const c of all) {
  rows.push(await measure(c));
  if (!json) {
    const r = rows[rows.length - 1]!;
    const f = (x: { min: number; median: number } | null) => (x ? `${x.min.toFixed(2)} / ${x.median.toFixed(2)}` : '—');
    console.log(`| ${r.name} | ${r.unit} | ${f(r.ours)} | ${f(r.stock)} | ${f(r.reference)} | ${r.ratio.toFixed(2)} | ${r.cpuRatio.toFixed(2)} | ${r.where} |`);
  }
}
if (json) {
  console.log(JSON.stringify({ models, imageSize: size, batch, repeats, rows }, null, 2));
} else {
  const worst = (key: 'ratio' | 'cpuRatio') => rows.reduce((a, b) => (b[key] < a[key] ? b : a));
  console.log(`\nreference: matMul of the same M, N, K (GFLOP/s rows), a copy of the same bytes (GB/s rows)`);
  console.log(`worst ours/ref: ${worst('ratio').ratio.toFixed(2)} by wall time (${worst('ratio').name}), ${worst('cpuRatio').cpuRatio.toFixed(2)} by CPU time (${worst('cpuRatio').name})`);
}
