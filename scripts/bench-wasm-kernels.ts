/**
 * Throughput of the wasm backend's convolution/matmul kernels, stock versus
 * src/backend/wasm/, on DenseNet-121 training shapes (batch 8).
 *
 *   npx tsx scripts/bench-wasm-kernels.ts [--reps N] [--quick] [--gemm [--section filter|conv1x1|conv3x3|matmul]]
 *
 * --gemm runs only the comparison of the project's own GEMM (src/backend/wasm/gemm, relaxed and plain builds)
 * with the XNNPACK route on DenseNet-121 112² batch-16 shapes: filter gradients (1×1 and 3×3) and the forward
 * 1×1 conv, the configurations alternated in one process, min and median of N (default 7) rounds.
 *
 * Each number is the best of N runs (default 3) after one warm-up, so it
 * includes per-call costs a training step also pays (XNNPACK weight packing
 * for fresh operands, intermediate allocation). GFLOP/s counts 2·MACs of the
 * mathematical operation, never extra work an implementation does.
 */
import * as os from 'node:os';
import * as v8 from 'node:v8';
import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';
import { matMulTransposeA } from '../src/ops/matmul.js';
import { gemmBuild, setGemmBuild, type GemmBuild } from '../src/backend/wasm/gemm/gemm.js';
import { setGemmRoute } from '../src/backend/wasm/gemm/routes.js';
import { wasmFeatures } from '../src/backend/doctor/wasm-features.js';
import {
  registerWasmFastOverrides,
  registerWasmTrainingKernels,
  unregisterWasmFastOverrides,
} from '../src/backend/wasm/index.js';

const args = process.argv.slice(2);
const repsArg = args.indexOf('--reps');
const GEMM_ONLY = args.includes('--gemm');
const sectionArg = args.indexOf('--section');
/** --gemm --section filter|conv1x1|conv3x3|matmul runs one part of the comparison. */
const want = (section: string): boolean => sectionArg < 0 || args[sectionArg + 1] === section;
const REPS = repsArg >= 0 ? Number(args[repsArg + 1]) : GEMM_ONLY ? 7 : 3;
const QUICK = args.includes('--quick');

// Relaxed SIMD (Node 20: behind this V8 flag, which takes effect at run time, before any compile of ours).
v8.setFlagsFromString('--experimental-wasm-relaxed-simd');

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

interface Config {
  name: string;
  setup: () => void;
  run: () => tf.Tensor;
}

/**
 * Runs the configurations in rotating order, REPS rounds after one warm-up round; min and median ms each, of
 * this process's CPU time (user + system): the wasm backend computes on one thread, and on a shared machine
 * CPU time is far steadier than wall time (which is reported as its minimum).
 */
function alternated(configs: Config[]): { name: string; min: number; median: number; wall: number }[] {
  const times = configs.map(() => [] as number[]);
  const walls = configs.map(() => Number.POSITIVE_INFINITY);
  for (let round = 0; round <= REPS; round++) {
    for (let i = 0; i < configs.length; i++) {
      const index = (i + round) % configs.length;
      const c = configs[index]!;
      c.setup();
      const t0 = performance.now();
      const cpu0 = process.cpuUsage();
      const r = c.run();
      r.dataSync();
      const cpu = process.cpuUsage(cpu0);
      const dt = performance.now() - t0;
      r.dispose();
      if (round > 0) {
        times[index]!.push((cpu.user + cpu.system) / 1000);
        walls[index] = Math.min(walls[index]!, dt);
      }
    }
  }
  return configs.map((c, i) => {
    const t = times[i]!.sort((a, b) => a - b);
    return { name: c.name, min: t[0]!, median: t[Math.floor(t.length / 2)]!, wall: walls[i]! };
  });
}

async function gemmComparison(): Promise<void> {
  const builds: GemmBuild[] = wasmFeatures().relaxedSimd ? ['relaxed', 'plain'] : ['plain'];
  console.log(`own GEMM builds measured: [${builds.join(', ')}]${builds.length === 1 ? ' (relaxed SIMD unavailable)' : ''}; ` +
    `default build here: ${gemmBuild()}; ${REPS} alternated rounds, ` +
    'CPU ms min / median (wall ms min)');
  const B = 16;
  const cases: { name: string; hw: number; cin: number; cout: number; k: number }[] = [
    { name: '1x1 64->128 @28', hw: 28, cin: 64, cout: 128, k: 1 },
    { name: '1x1 224->128 @28', hw: 28, cin: 224, cout: 128, k: 1 },
    { name: '1x1 256->128 @28 (trans)', hw: 28, cin: 256, cout: 128, k: 1 },
    { name: '1x1 480->128 @14', hw: 14, cin: 480, cout: 128, k: 1 },
    { name: '1x1 512->256 @14 (trans)', hw: 14, cin: 512, cout: 256, k: 1 },
    { name: '1x1 992->128 @7', hw: 7, cin: 992, cout: 128, k: 1 },
    { name: '1x1 1024->512 @7 (trans)', hw: 7, cin: 1024, cout: 512, k: 1 },
    { name: '1x1 992->128 @3', hw: 3, cin: 992, cout: 128, k: 1 },
    { name: '3x3 128->32 @28', hw: 28, cin: 128, cout: 32, k: 3 },
    { name: '3x3 128->32 @14', hw: 14, cin: 128, cout: 32, k: 3 },
    { name: '3x3 128->32 @7', hw: 7, cin: 128, cout: 32, k: 3 },
    { name: '3x3 128->32 @3', hw: 3, cin: 128, cout: 32, k: 3 },
  ];
  const fmtRow = (rows: { name: string; min: number; median: number; wall: number }[]): string =>
    rows.map((r) => `${r.name} ${r.min.toFixed(1)} / ${r.median.toFixed(1)} (${r.wall.toFixed(1)})`).join(' | ');
  console.log(`\n== filter gradient, batch ${B} (DenseNet-121 at 112²): xnnpack route vs own GEMM`);
  for (const c of want('filter') ? cases : []) {
    const x = tf.randomNormal([B, c.hw, c.hw, c.cin]) as tf.Tensor4D;
    const dy = tf.randomNormal([B, c.hw, c.hw, c.cout]) as tf.Tensor4D;
    const filterShape: [number, number, number, number] = [c.k, c.k, c.cin, c.cout];
    const grad = (): tf.Tensor => tf.engine().runKernel('Conv2DBackpropFilter', { x, dy },
      { strides: 1, pad: c.k === 1 ? 'valid' : 1, dataFormat: 'NHWC', filterShape }) as tf.Tensor;
    const configs: Config[] = [
      { name: 'xnnpack', setup: () => setGemmRoute('filterGrad', 'xnnpack'), run: grad },
      ...builds.map((b) => ({ name: `gemm-${b}`, setup: () => { setGemmRoute('filterGrad', 'gemm'); setGemmBuild(b); }, run: grad })),
    ];
    console.log(`${c.name.padEnd(26)} ${fmtRow(alternated(configs))}`);
    tf.dispose([x, dy]);
  }
  console.log(`\n== forward 1x1 conv, batch ${B}: tf.conv2d, stock (XNNPACK) vs the 1×1 override on the own GEMM`);
  registerWasmFastOverrides();
  for (const c of want('conv1x1') ? cases.filter((k) => k.k === 1) : []) {
    const x = tf.randomNormal([B, c.hw, c.hw, c.cin]) as tf.Tensor4D;
    const w = tf.randomNormal([1, 1, c.cin, c.cout], 0, 0.1) as tf.Tensor4D;
    const configs: Config[] = [
      { name: 'xnnpack', setup: () => setGemmRoute('conv1x1', 'xnnpack'), run: () => tf.conv2d(x, w, 1, 'valid') },
      ...builds.map((b) => ({ name: `gemm-${b}`, setup: () => { setGemmRoute('conv1x1', 'gemm'); setGemmBuild(b); }, run: () => tf.conv2d(x, w, 1, 'valid') })),
    ];
    console.log(`${c.name.padEnd(26)} ${fmtRow(alternated(configs))}`);
    tf.dispose([x, w]);
  }
  console.log(`\n== forward 3x3 conv pad 1, batch ${B}: tf.conv2d, stock (XNNPACK) vs the override's per-tap own GEMMs`);
  for (const c of want('conv3x3') ? cases.filter((k) => k.k === 3) : []) {
    const x = tf.randomNormal([B, c.hw, c.hw, c.cin]) as tf.Tensor4D;
    const w = tf.randomNormal([3, 3, c.cin, c.cout], 0, 0.1) as tf.Tensor4D;
    const configs: Config[] = [
      { name: 'xnnpack', setup: () => setGemmRoute('convKxK', 'xnnpack'), run: () => tf.conv2d(x, w, 1, 1) },
      ...builds.map((b) => ({ name: `gemm-${b}`, setup: () => { setGemmRoute('convKxK', 'gemm'); setGemmBuild(b); }, run: () => tf.conv2d(x, w, 1, 1) })),
    ];
    console.log(`${c.name.padEnd(26)} ${fmtRow(alternated(configs))}`);
    tf.dispose([x, w]);
  }
  setGemmRoute('convKxK', 'auto');

  console.log(`\n== batch-1 matMul, batch ${B} (the recomputing modes' 1×1 convs): forward a·w, input gradient dy·wᵀ (w fresh, as each step's)`);
  for (const c of want('matmul') ? cases.filter((k) => k.k === 1) : []) {
    const p = B * c.hw * c.hw;
    const a = tf.randomNormal([p, c.cin]) as tf.Tensor2D;
    const w = tf.randomNormal([c.cin, c.cout], 0, 0.1) as tf.Tensor2D;
    const dy = tf.randomNormal([p, c.cout]) as tf.Tensor2D;
    for (const [label, f] of [
      ['a·w', () => tf.matMul(a, w)],
      ['dy·wᵀ', () => tf.tidy(() => tf.matMul(dy, tf.add(w, 0), false, true))],
    ] as const) {
      const configs: Config[] = [
        { name: 'xnnpack', setup: () => setGemmRoute('matMul', 'xnnpack'), run: f },
        ...builds.map((b) => ({ name: `gemm-${b}`, setup: () => { setGemmRoute('matMul', 'gemm'); setGemmBuild(b); }, run: f })),
      ];
      console.log(`${`${c.name} ${label}`.padEnd(32)} ${fmtRow(alternated(configs))}`);
    }
    tf.dispose([a, w, dy]);
  }
  unregisterWasmFastOverrides();
  setGemmRoute('matMul', 'auto');
  setGemmBuild(null);
  setGemmRoute('filterGrad', 'auto');
  setGemmRoute('conv1x1', 'auto');
}

async function main(): Promise<void> {
  await tf.setBackend('wasm');
  await tf.ready();
  const registered = registerWasmTrainingKernels();
  console.log(`tfjs ${tf.version.tfjs}, backend ${tf.getBackend()}, SIMD ${String(await tf.env().getAsync('WASM_HAS_SIMD_SUPPORT'))}, ` +
    `threads ${String(await tf.env().getAsync('WASM_HAS_MULTITHREAD_SUPPORT'))}; registered: [${registered.join(', ')}]; best of ${REPS}; ` +
    `${os.cpus().length} CPUs, load average ${os.loadavg().map((l) => l.toFixed(1)).join(' ')}`);
  if (GEMM_ONLY) {
    await gemmComparison();
    return;
  }

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
