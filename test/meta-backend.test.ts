import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  META_BACKEND_NAME,
  META_WASM_BACKEND_NAME,
  MetaBackend,
  metaKernelNames,
  registerMetaBackend,
  registerMetaWasmTrainingKernels,
} from '../src/backend/meta/index.js';

// Only silences the cpu backend's "install tfjs-node" hint; kernels and accounting are unaffected.
tf.env().set('PROD', true);
registerMetaBackend();

interface MemSnapshot {
  numBytes: number;
  numTensors: number;
  numDataBuffers: number;
}

function mem(): MemSnapshot {
  const m = tf.memory();
  return { numBytes: m.numBytes, numTensors: m.numTensors, numDataBuffers: m.numDataBuffers };
}

function delta(a: MemSnapshot, b: MemSnapshot): MemSnapshot {
  return { numBytes: b.numBytes - a.numBytes, numTensors: b.numTensors - a.numTensors, numDataBuffers: b.numDataBuffers - a.numDataBuffers };
}

// ------------------------------------------------------------------------------------------------
// (1) A small CNN training step written with plain tf ops.

interface Cnn {
  trainable: tf.Variable[];
  all: tf.Variable[];
  x: tf.Tensor4D;
  labels: tf.Tensor2D;
}

function makeCnn(trainConvFilters: boolean): Cnn {
  let seed = 1;
  const make = (shape: number[], trainable = true): tf.Variable => {
    const init = tf.randomNormal(shape, 0, 0.1, 'float32', seed++);
    const v = tf.variable(init, trainable);
    init.dispose();
    return v;
  };
  const inScale = make([3]);
  const w1 = make([3, 3, 3, 8], trainConvFilters);
  const gamma = make([8]);
  const beta = make([8]);
  const w2 = make([1, 1, 8, 4], trainConvFilters);
  const wd = make([12, 5]);
  const bd = make([5]);
  const all = [inScale, w1, gamma, beta, w2, wd, bd];
  const x = tf.randomUniform([2, 16, 16, 3], 0, 1, 'float32', 11) as tf.Tensor4D;
  const labels = tf.tidy(() => tf.oneHot(tf.tensor1d([1, 3], 'int32'), 5).toFloat()) as tf.Tensor2D;
  return { trainable: all.filter((v) => v.trainable), all, x, labels };
}

const doubledRelu = tf.customGrad((...args: Array<tf.Tensor | tf.GradSaveFunc>) => {
  const x = args[0] as tf.Tensor;
  const save = args[1] as tf.GradSaveFunc;
  save([x]);
  return {
    value: tf.relu(x).mul(2),
    gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => [dy.mul(tf.step(saved[0] as tf.Tensor)).mul(2)],
  };
});

function cnnLoss(m: Cnn, onForwardEnd: () => void = () => undefined): tf.Scalar {
  const [inScale, w1, gamma, beta, w2, wd, bd] = m.all as [tf.Variable, tf.Variable, tf.Variable, tf.Variable, tf.Variable, tf.Variable, tf.Variable];
  let h = tf.mul(m.x, inScale) as tf.Tensor4D;
  h = tf.conv2d(h, w1 as tf.Tensor4D, 2, [[0, 0], [1, 1], [1, 1], [0, 0]]);
  const { mean, variance } = tf.moments(h, [0, 1, 2]);
  h = tf.batchNorm(h, mean, variance, beta as tf.Tensor1D, gamma as tf.Tensor1D, 1e-3) as tf.Tensor4D;
  h = tf.relu(h);
  h = tf.maxPool(h, 3, 1, 1);
  const a = tf.conv2d(h, w2 as tf.Tensor4D, 1, 'same');
  const c = doubledRelu(h) as tf.Tensor4D;
  h = tf.concat([a, c], 3);
  h = tf.avgPool(h, 2, 2, 'valid');
  let f = tf.mean(h, [1, 2]) as tf.Tensor2D;
  f = tf.dropout(f, 0.25, undefined, 7) as tf.Tensor2D;
  const logits = tf.matMul(f, wd as tf.Tensor2D).add(bd);
  const loss = tf.losses.softmaxCrossEntropy(m.labels, logits) as tf.Scalar;
  onForwardEnd();
  return loss;
}

interface KernelRow {
  name: string;
  bytesAdded: number;
  totalBytes: number;
  tensorsAdded: number;
  totalTensors: number;
  outputShapes: number[][];
}

interface StepReport {
  kernels: KernelRow[];
  peakBytes: number;
  newBytes: number;
  newTensors: number;
  afterStep: MemSnapshot;
  /**
   * At the end of the forward pass, when the tape holds its saved tensors: the engine clones those
   * (Identity), so numDataBuffers here shows whether Identity aliases (cpu) or copies (wasm).
   */
  forwardEnd: MemSnapshot;
}

interface CnnReport {
  steps: StepReport[];
  afterDispose: MemSnapshot;
  /** Peak bytes of distinct live buffers during the steps (meta backends only). */
  peakResident?: number;
}

/**
 * tfjs-core 4.22's MomentumOptimizer.dispose() never calls SGDOptimizer.dispose(), so the SGD
 * learning-rate scalar it kept outlives the optimizer, on every backend alike.
 */
const MOMENTUM_DISPOSE_LEAK: MemSnapshot = { numBytes: 4, numTensors: 1, numDataBuffers: 1 };

/** One momentum step and one Adam step under tf.profile, everything relative to a baseline. */
async function runCnn(backend: string, trainConvFilters: boolean, repeats = 1): Promise<CnnReport> {
  await tf.setBackend(backend);
  const base = mem();
  const b = tf.backend();
  const residentAtStart = b instanceof MetaBackend ? b.residentBytes() : 0;
  if (b instanceof MetaBackend) b.resetPeakResidentBytes();
  const m = makeCnn(trainConvFilters);
  const optimizers = [tf.train.momentum(0.05, 0.9), tf.train.adam(0.01)];
  const steps: StepReport[] = [];
  for (let r = 0; r < repeats; r++) {
    for (const opt of optimizers) {
      let forwardEnd: MemSnapshot | undefined;
      const profile = await tf.profile(() => {
        const cost = opt.minimize(() => cnnLoss(m, () => (forwardEnd = delta(base, mem()))), true, m.trainable);
        cost?.dispose();
      });
      steps.push({
        kernels: profile.kernels.map((k) => ({
          name: k.name,
          bytesAdded: k.bytesAdded,
          totalBytes: k.totalBytesSnapshot - base.numBytes,
          tensorsAdded: k.tensorsAdded,
          totalTensors: k.totalTensorsSnapshot - base.numTensors,
          outputShapes: k.outputShapes,
        })),
        peakBytes: profile.peakBytes - base.numBytes,
        newBytes: profile.newBytes,
        newTensors: profile.newTensors,
        afterStep: delta(base, mem()),
        forwardEnd: forwardEnd as MemSnapshot,
      });
    }
  }
  const peakResident = b instanceof MetaBackend ? b.peakResidentBytes() - residentAtStart : undefined;
  for (const opt of optimizers) opt.dispose();
  tf.dispose([...m.all, m.x, m.labels]);
  return { steps, afterDispose: delta(base, mem()), ...(peakResident === undefined ? {} : { peakResident }) };
}

describe('meta backend: exact accounting of a CNN training step', () => {
  let cpuFull: CnnReport;
  let metaFull: CnnReport;

  beforeAll(async () => {
    cpuFull = await runCnn('cpu', true);
    metaFull = await runCnn(META_BACKEND_NAME, true);
  });

  afterAll(async () => {
    await tf.setBackend('cpu');
  });

  it('dispatches the kernels the brief names and reports a real program', () => {
    const names = new Set(cpuFull.steps.flatMap((s) => s.kernels.map((k) => k.name)));
    for (const k of ['Conv2D', 'Conv2DBackpropInput', 'Conv2DBackpropFilter', 'MaxPool', 'MaxPoolGrad', 'AvgPool', 'AvgPoolGrad', 'FusedBatchNorm', 'Concat', 'BatchMatMul', 'Relu', 'Step', 'Mean', 'Identity', 'Reshape', 'Cast']) {
      expect(names.has(k), k).toBe(true);
    }
    expect(cpuFull.steps[0]?.peakBytes).toBeGreaterThan(0);
    // The optimizers keep accumulators alive after their first step.
    expect(cpuFull.steps[0]?.newBytes).toBeGreaterThan(0);
  });

  it('peakBytes, newBytes, newTensors and every per-kernel snapshot match cpu to the byte', () => {
    expect(metaFull.steps.length).toBe(2);
    for (let i = 0; i < cpuFull.steps.length; i++) {
      const c = cpuFull.steps[i] as StepReport;
      const mt = metaFull.steps[i] as StepReport;
      expect(mt.peakBytes).toBe(c.peakBytes);
      expect(mt.newBytes).toBe(c.newBytes);
      expect(mt.newTensors).toBe(c.newTensors);
      expect(mt.kernels).toEqual(c.kernels);
    }
  });

  it('tf.memory() numBytes, numTensors and numDataBuffers match cpu after each step and after disposal', () => {
    for (let i = 0; i < cpuFull.steps.length; i++) {
      expect((metaFull.steps[i] as StepReport).afterStep).toEqual((cpuFull.steps[i] as StepReport).afterStep);
      expect((metaFull.steps[i] as StepReport).forwardEnd).toEqual((cpuFull.steps[i] as StepReport).forwardEnd);
    }
    expect(cpuFull.afterDispose).toEqual(MOMENTUM_DISPOSE_LEAK);
    expect(metaFull.afterDispose).toEqual(cpuFull.afterDispose);
  });

  it("'meta-wasm' matches wasm (conv filters frozen: wasm has no Conv2DBackpropFilter)", async () => {
    const wasm = await runCnn('wasm', false);
    const metaWasm = await runCnn(META_WASM_BACKEND_NAME, false);
    const names = new Set(wasm.steps.flatMap((s) => s.kernels.map((k) => k.name)));
    expect(names.has('Conv2DBackpropInput')).toBe(true);
    expect(names.has('Conv2DBackpropFilter')).toBe(false);
    for (let i = 0; i < wasm.steps.length; i++) {
      const w = wasm.steps[i] as StepReport;
      const mw = metaWasm.steps[i] as StepReport;
      expect(mw.peakBytes).toBe(w.peakBytes);
      expect(mw.newBytes).toBe(w.newBytes);
      expect(mw.newTensors).toBe(w.newTensors);
      expect(mw.kernels).toEqual(w.kernels);
      expect(mw.afterStep).toEqual(w.afterStep);
      expect(mw.forwardEnd).toEqual(w.forwardEnd);
    }
    expect(metaWasm.afterDispose).toEqual(wasm.afterDispose);
    // The engine counts bytes per tensor, so cpu and wasm report the same numBytes; but wasm copies
    // where cpu aliases (Identity clones of saved tensors, no-loss casts), so it holds more buffers.
    const cpuFrozen = await runCnn('cpu', false);
    const metaFrozen = await runCnn(META_BACKEND_NAME, false);
    expect((wasm.steps[1] as StepReport).peakBytes).toBe((cpuFrozen.steps[1] as StepReport).peakBytes);
    const wasmBuffers = (wasm.steps[1] as StepReport).forwardEnd.numDataBuffers;
    expect(wasmBuffers).toBeGreaterThan((cpuFrozen.steps[1] as StepReport).forwardEnd.numDataBuffers);
    expect(metaFrozen.steps).toEqual(cpuFrozen.steps);
    expect(metaWasm.peakResident).toBeGreaterThan(metaFrozen.peakResident ?? Infinity);
    expect(metaFrozen.peakResident).toBeLessThan((cpuFrozen.steps[0] as StepReport).peakBytes);
  });

  it('has no leaks: repeated steps on meta leave numTensors and numBytes where they were', async () => {
    const report = await runCnn(META_BACKEND_NAME, true, 3);
    const momentumSteps = report.steps.filter((_, i) => i % 2 === 0);
    const adamSteps = report.steps.filter((_, i) => i % 2 === 1);
    // The first step of each optimizer creates its accumulators; later steps must add nothing.
    for (const s of [...momentumSteps.slice(1), ...adamSteps.slice(1)]) {
      expect(s.newTensors).toBe(0);
      expect(s.newBytes).toBe(0);
    }
    expect(report.steps[5]?.afterStep).toEqual(report.steps[1]?.afterStep);
    expect(report.afterDispose).toEqual(MOMENTUM_DISPOSE_LEAK);
  });
});

// ------------------------------------------------------------------------------------------------
// (2) Reading values throws a clear error; writing works.

describe('meta backend: values', () => {
  beforeAll(async () => {
    await tf.setBackend(META_BACKEND_NAME);
  });
  afterAll(async () => {
    await tf.setBackend('cpu');
  });

  const expected = /Tensor values are not available on the 'meta' backend: it tracks shapes only \(/;

  it('reading values throws, naming the shape and dtype', async () => {
    const t = tf.tensor2d([[1, 2, 3], [4, 5, 6]]);
    expect(() => t.dataSync()).toThrow(expected);
    expect(() => t.dataSync()).toThrow(/shape \[2,3\] and dtype float32/);
    expect(() => t.arraySync()).toThrow(expected);
    expect(() => t.print()).toThrow(expected);
    expect(() => t.bufferSync()).toThrow(expected);
    await expect(t.data()).rejects.toThrow(expected);
    await expect(t.array()).rejects.toThrow(expected);
    const s = tf.sum(t);
    expect(() => s.dataSync()).toThrow(expected);
    tf.dispose([t, s]);
  });

  it('writing keeps shape and dtype: tensors, variables, random and string tensors', () => {
    const before = mem();
    const t = tf.tensor([1, 2, 3, 4], [2, 2], 'int32');
    const init = tf.randomNormal([3, 5], 0, 1, 'float32', 3);
    const v = tf.variable(init);
    const r = tf.randomUniform([4, 4]);
    const d = tf.tidy(() => tf.dropout(tf.ones([8]), 0.5));
    const str = tf.tensor(['ab', 'cde']);
    expect(t.shape).toEqual([2, 2]);
    expect(t.dtype).toBe('int32');
    expect(v.shape).toEqual([3, 5]);
    expect(r.dtype).toBe('float32');
    expect(d.shape).toEqual([8]);
    expect(str.dtype).toBe('string');
    const zeros = tf.zeros([3, 5]);
    v.assign(zeros);
    const wrong = tf.zeros([2, 5]);
    expect(() => v.assign(wrong)).toThrow();
    tf.dispose([t, init, v, r, d, str, zeros, wrong]);
    expect(mem()).toEqual(before);
  });

  it('the backend mirrors cpu refCount and disposeData', () => {
    const b = tf.backend() as MetaBackend;
    expect(b).toBeInstanceOf(MetaBackend);
    const id = b.write(new Float32Array(6), [2, 3], 'float32');
    expect(b.refCount(id)).toBe(1);
    b.incRef(id);
    expect(b.refCount(id)).toBe(2);
    expect(b.dataInfo(id)).toEqual({ shape: [2, 3], dtype: 'float32', refCount: 2 });
    b.incRef(id);
    b.decRef(id);
    expect(b.disposeData(id)).toBe(false);
    expect(b.refCount(id)).toBe(1);
    expect(b.disposeData(id)).toBe(true);
    expect(b.refCount(id)).toBe(0);
    expect(b.dataInfo(id)).toBeUndefined();
    expect(b.disposeData(id)).toBe(true);
    const forced = b.write(new Float32Array(1), [1], 'float32');
    b.incRef(forced);
    expect(b.disposeData(forced, true)).toBe(true);
    expect(b.refCount(forced)).toBe(0);
  });

  it('tracks distinct buffers: a reshape is counted twice by the engine but held once', () => {
    const b = tf.backend() as MetaBackend;
    const r0 = b.residentBytes();
    const m0 = tf.memory().numBytes;
    const x = tf.fill([1000], 1);
    const y = x.reshape([10, 100]);
    expect(tf.memory().numBytes - m0).toBe(8000);
    expect(b.residentBytes() - r0).toBe(4000);
    b.resetPeakResidentBytes();
    const flat = y.reshape([1000]);
    const z = tf.add(x, flat);
    expect(b.peakResidentBytes() - r0).toBe(8000);
    tf.dispose([x, y, flat, z]);
    expect(b.residentBytes()).toBe(r0);
  });

  it('tensors move between meta and real backends the way the engine moves them', async () => {
    await tf.setBackend('cpu');
    const onCpu = tf.tensor2d([[1, 2], [3, 4]]);
    await tf.setBackend(META_BACKEND_NAME);
    const onMeta = tf.matMul(onCpu, onCpu);
    expect(onMeta.shape).toEqual([2, 2]);
    // onCpu was moved to meta by the kernel, as it would be moved to wasm; its values are gone now.
    expect(() => onCpu.dataSync()).toThrow(expected);
    await tf.setBackend('cpu');
    expect(() => tf.add(onMeta, 1)).toThrow(expected);
    await tf.setBackend(META_BACKEND_NAME);
    tf.dispose([onCpu, onMeta]);
  });

  it('plans a large batch in a blink', () => {
    const t0 = Date.now();
    const before = tf.memory().numBytes;
    const peak = tf.tidy(() => {
      const x = tf.fill([256, 224, 224, 3], 0.5) as tf.Tensor4D;
      const w = tf.fill([7, 7, 3, 64], 0.1) as tf.Tensor4D;
      const y = tf.relu(tf.conv2d(x, w, 2, 3));
      const p = tf.maxPool(y, 3, 2, 1);
      expect(p.shape).toEqual([256, 56, 56, 64]);
      return tf.memory().numBytes - before;
    });
    expect(peak).toBe(4 * (256 * 224 * 224 * 3 + 7 * 7 * 3 * 64 + 2 * 256 * 112 * 112 * 64 + 256 * 56 * 56 * 64));
    expect(Date.now() - t0).toBeLessThan(1000);
  });

  it('registration is idempotent and never auto-selected', () => {
    registerMetaBackend();
    registerMetaBackend();
    expect(tf.getKernelsForBackend(META_BACKEND_NAME).length).toBe(metaKernelNames().length);
    expect(tf.getKernelsForBackend(META_WASM_BACKEND_NAME).length).toBe(metaKernelNames('wasm').length);
    expect(metaKernelNames()).toContain('Conv2DBackpropFilter');
    expect(metaKernelNames('wasm')).not.toContain('Conv2DBackpropFilter');
    for (const k of [
      'Conv2D', 'Conv2DBackpropInput', 'MaxPool', 'MaxPoolGrad', 'AvgPool', 'AvgPoolGrad', 'FusedConv2D', '_FusedMatMul',
      'Relu', 'Step', 'Add', 'AddN', 'Sub', 'Multiply', 'RealDiv', 'Neg', 'Square', 'SquaredDifference', 'Sqrt', 'Rsqrt',
      'Exp', 'Log', 'Abs', 'Sign', 'Maximum', 'Minimum', 'Greater', 'GreaterEqual', 'Less', 'LessEqual', 'Equal',
      'NotEqual', 'Select', 'LogicalAnd', 'Sum', 'Mean', 'Max', 'Min', 'Prod', 'ArgMax', 'ArgMin', 'Concat', 'Slice',
      'StridedSlice', 'Reshape', 'Transpose', 'Tile', 'PadV2', 'MirrorPad', 'Cast', 'Identity', 'Fill', 'ZerosLike',
      'OnesLike', 'OneHot', 'Softmax', 'BatchMatMul', 'ClipByValue', 'FusedBatchNorm', 'Range', 'Pack', 'Unpack',
      'SplitV', 'GatherV2', 'ResizeBilinear', 'ResizeBilinearGrad', 'Reverse', 'Cumsum', 'IsNan', 'IsFinite', 'ExpandDims',
    ]) {
      expect(metaKernelNames(), k).toContain(k);
    }
    expect(() => metaKernelNames('gpu' as 'cpu')).toThrow(/flavor must be 'cpu' or 'wasm'/);
    // Lower than every real backend's priority, so tfjs would rather pick any of those.
    const engine = tf.engine() as unknown as { registryFactory: Record<string, { priority: number }> };
    expect(engine.registryFactory[META_BACKEND_NAME]?.priority).toBeLessThan(engine.registryFactory['cpu']?.priority ?? 0);
  });
});

// ------------------------------------------------------------------------------------------------
// (3) + differential tests: op by op, outputs and memory deltas must match the real backend.

interface CaseResult {
  outputs?: Array<{ shape: number[]; dtype: string }>;
  error?: string;
  duringOp?: MemSnapshot;
  afterTidy?: MemSnapshot;
  afterDispose?: MemSnapshot;
}

/** `cpuOnly`: the kernel call is outside what wasm's C++ handles (it logs and leaves garbage). */
type OpCase = [name: string, run: () => tf.Tensor | tf.Tensor[], cpuOnly?: 'cpuOnly'];

const f32 = (shape: number[]): tf.Tensor => tf.fill(shape, 0.5);
const img = (): tf.Tensor4D => tf.randomUniform([2, 6, 6, 3], 0, 1, 'float32', 5) as tf.Tensor4D;
const bools = (): tf.Tensor => tf.tensor([[true, false, true], [false, true, false]], undefined, 'bool');
const ints = (): tf.Tensor => tf.tensor([[1, 2, 3], [4, 5, 6]], undefined, 'int32');
const run = (kernel: string, inputs: tf.NamedTensorMap | tf.Tensor[], attrs: tf.NamedAttrMap = {}): tf.Tensor | tf.Tensor[] =>
  tf.engine().runKernel(kernel, inputs as unknown as tf.NamedTensorMap, attrs) as tf.Tensor | tf.Tensor[];

const CASES: OpCase[] = [
  ['reshape', () => f32([2, 3]).reshape([3, 2])],
  ['reshape -1', () => f32([2, 3, 4]).reshape([-1, 4])],
  ['expandDims', () => f32([2, 3]).expandDims(-1)],
  ['squeeze', () => f32([2, 1, 3]).squeeze()],
  ['clone', () => f32([2, 3]).clone()],
  ['cast f32->f32', () => f32([2, 3]).cast('float32')],
  ['cast i32->f32', () => ints().cast('float32')],
  ['cast f32->i32', () => f32([2, 3]).cast('int32')],
  ['cast bool->i32', () => bools().cast('int32')],
  ['cast i32->bool', () => ints().cast('bool')],
  ['concat', () => tf.concat([f32([2, 3]), f32([2, 2])], 1)],
  ['concat empty+one', () => tf.concat([tf.zeros([0, 3]), f32([2, 3])], 0)],
  ['concat all empty', () => tf.concat([tf.zeros([0, 3]), tf.zeros([0, 3])], 0)],
  ['concat single', () => tf.concat([f32([2, 3])], 0)],
  ['stack one', () => tf.stack([f32([2, 3])], 1)],
  ['stack two', () => tf.stack([f32([2, 3]), f32([2, 3])], -1)],
  ['unstack', () => tf.unstack(f32([3, 2]), 1)],
  ['split', () => tf.split(f32([2, 6]), [1, 2, 3], 1)],
  ['split even', () => tf.split(f32([4, 6]), 2, 0)],
  ['slice', () => f32([4, 5]).slice([1, 1], [2, -1])],
  ['stridedSlice identity', () => f32([2, 3]).stridedSlice([0, 0], [2, 3], [1, 1])],
  ['stridedSlice dim0', () => f32([4, 3]).stridedSlice([1, 0], [3, 3], [1, 1])],
  ['stridedSlice strided bool', () => bools().stridedSlice([0, 0], [2, 3], [1, 2])],
  ['stridedSlice shrink', () => tf.stridedSlice(f32([4, 3]), [1, 0], [2, 3], [1, 1], 0, 0, 0, 0, 1)],
  ['transpose', () => f32([2, 3, 4]).transpose([2, 0, 1])],
  ['transpose noop', () => f32([1, 3]).transpose([1, 0])],
  ['tile', () => f32([2, 3]).tile([2, 1])],
  ['broadcastTo', () => tf.broadcastTo(f32([1, 3]), [4, 3])],
  ['broadcastTo same', () => tf.broadcastTo(f32([2, 3]), [2, 3])],
  ['pad', () => tf.pad(f32([2, 3]), [[1, 0], [0, 2]])],
  ['pad empty', () => tf.pad(tf.zeros([0, 3]), [[1, 1], [0, 0]])],
  ['mirrorPad', () => tf.mirrorPad(f32([3, 3]), [[1, 1], [2, 2]], 'reflect')],
  ['reverse', () => tf.reverse(f32([2, 3]), 1)],
  ['reverse scalar', () => tf.reverse(tf.scalar(2), [])],
  ['gather', () => tf.gather(f32([4, 3]), tf.tensor1d([0, 3, 1], 'int32'), 0)],
  ['gather axis1 batch', () => tf.gather(f32([2, 4, 3]), tf.tensor2d([[0, 1], [2, 3]], [2, 2], 'int32'), 1, 1)],
  ['oneHot', () => tf.oneHot(tf.tensor1d([0, 2], 'int32'), 4)],
  ['fill int', () => tf.fill([2, 2], 3, 'int32')],
  ['zerosLike/onesLike', () => [tf.zerosLike(ints()), tf.onesLike(bools())]],
  ['range', () => [tf.range(0, 10, 3), tf.range(5, 0, -1, 'int32'), tf.range(3, 3)]],
  ['linspace', () => tf.linspace(0, 1, 7)],
  ['topk', () => { const r = tf.topk(f32([3, 5]), 2); return [r.values, r.indices]; }],
  ['sum', () => [tf.sum(f32([2, 3, 4]), [0, 2]), tf.sum(f32([2, 3]), 1, true), tf.sum(bools())]],
  ['Sum bool kernel', () => run('Sum', { x: bools() }, { axis: [1], keepDims: false }), 'cpuOnly'],
  ['Prod kernels', () => [run('Prod', { x: bools() }, { axis: [0], keepDims: true }) as tf.Tensor, tf.prod(ints(), 1)]],
  ['mean/max/min', () => [tf.mean(ints(), 0), tf.max(f32([2, 3, 4]), [0, 2], true), tf.min(ints(), -1)]],
  ['all/any', () => [tf.all(bools(), 1), tf.any(bools(), 0, true)]],
  ['argMax/argMin', () => [tf.argMax(f32([2, 3, 4]), 1), tf.argMin(ints(), 0)]],
  ['cumsum', () => [tf.cumsum(f32([2, 3]), 0), tf.cumsum(ints(), 1, true, true)]],
  ['cumprod', () => [tf.cumprod(f32([2, 3]), 0), tf.cumprod(ints(), 1)]],
  ['elu grad', () => tf.grad((a: tf.Tensor) => tf.elu(a).sum())(f32([2, 3]))],
  ['LogicalXor kernel', () => run('LogicalXor', { a: bools(), b: bools() })],
  ['unary', () => {
    const x = f32([2, 3]);
    return [tf.relu(x), tf.exp(x), tf.log(x), tf.sqrt(x), tf.rsqrt(x), tf.abs(x), tf.sign(x), tf.neg(x), tf.square(x),
      tf.step(x), tf.sigmoid(x), tf.tanh(x), tf.elu(x), tf.leakyRelu(x), tf.isNaN(x), tf.isFinite(x), tf.floor(x),
      tf.clipByValue(x, 0, 1), tf.softplus(x), tf.reciprocal(x), tf.relu6(x), tf.selu(x), tf.expm1(x), tf.round(x)];
  }],
  ['unary int', () => { const x = ints(); return [tf.abs(x), tf.neg(x), tf.square(x), tf.relu(x), tf.exp(x), tf.expm1(x)]; }],
  ['logicalNot kernel', () => run('LogicalNot', { x: bools() })],
  ['prelu', () => tf.prelu(f32([2, 3]), tf.fill([3], 0.2))],
  ['binary', () => {
    const a = f32([2, 3]);
    const b = f32([3]);
    return [tf.add(a, b), tf.sub(b, a), tf.mul(a, b), tf.div(a, b), tf.maximum(a, b), tf.minimum(a, b), tf.pow(a, b),
      tf.squaredDifference(a, b), tf.mod(a, b), tf.equal(a, b), tf.notEqual(a, b), tf.greater(a, b),
      tf.greaterEqual(a, b), tf.less(a, b), tf.lessEqual(a, b), tf.atan2(a, b)];
  }],
  ['floorDiv kernel', () => run('FloorDiv', { a: ints(), b: ints() })],
  ['logical', () => [tf.logicalAnd(bools(), bools()), tf.logicalOr(bools(), bools())]],
  ['where', () => tf.where(bools(), f32([2, 3]), f32([2, 3]))],
  ['Select mixed dtypes', () => run('Select', { condition: bools(), t: ints(), e: f32([2, 3]) })],
  ['addN', () => tf.addN([f32([2, 3]), f32([2, 3]), f32([2, 3])])],
  ['softmax', () => [tf.softmax(f32([2, 5])), tf.logSoftmax(f32([2, 5]))]],
  ['Softmax int', () => run('Softmax', { logits: ints() }, { dim: -1 }), 'cpuOnly'],
  ['matMul', () => [tf.matMul(f32([2, 3]), f32([4, 3]), false, true), tf.matMul(f32([3, 2]), f32([3, 4]), true, false)]],
  ['matMul batch broadcast', () => tf.matMul(f32([2, 1, 3, 4]), f32([3, 4, 5]))],
  ['fused matMul', () => [
    tf.fused.matMul({ a: f32([2, 3]), b: f32([3, 4]), bias: f32([4]), activation: 'relu' }),
    tf.fused.matMul({ a: f32([2, 3]), b: f32([3, 4]), activation: 'linear' }),
    tf.fused.matMul({ a: f32([2, 3]), b: f32([3, 4]), bias: f32([4]), activation: 'leakyrelu', leakyreluAlpha: 0.1 }),
  ]],
  ['conv2d', () => {
    const x = img();
    return [tf.conv2d(x, f32([3, 3, 3, 4]) as tf.Tensor4D, 1, 'same'), tf.conv2d(x, f32([3, 3, 3, 4]) as tf.Tensor4D, 2, 'valid'),
      tf.conv2d(x, f32([2, 2, 3, 4]) as tf.Tensor4D, 2, 1, 'NHWC', 1, 'ceil'),
      tf.conv2d(x, f32([3, 3, 3, 2]) as tf.Tensor4D, [2, 1], [[0, 0], [2, 1], [0, 1], [0, 0]])];
  }],
  ['conv2dTranspose', () => tf.conv2dTranspose(f32([2, 3, 3, 4]) as tf.Tensor4D, f32([3, 3, 2, 4]) as tf.Tensor4D, [2, 6, 6, 2], 2, 'same')],
  ['conv2d grads', () => {
    const x = img();
    const w = f32([3, 3, 3, 4]) as tf.Tensor4D;
    return tf.grads((a: tf.Tensor, b: tf.Tensor) => tf.conv2d(a as tf.Tensor4D, b as tf.Tensor4D, 2, [[0, 0], [1, 1], [1, 1], [0, 0]]).sum())([x, w]);
  }],
  ['conv2d input grad', () => {
    const w = f32([3, 3, 3, 4]) as tf.Tensor4D;
    return tf.grad((a: tf.Tensor) => tf.conv2d(a as tf.Tensor4D, w, 1, 'same').sum())(img());
  }],
  ['fused conv2d', () => [
    tf.fused.conv2d({ x: img(), filter: f32([3, 3, 3, 4]) as tf.Tensor4D, strides: 1, pad: 'same', bias: f32([4]), activation: 'relu' }),
    tf.fused.conv2d({ x: img(), filter: f32([3, 3, 3, 4]) as tf.Tensor4D, strides: 2, pad: 'valid' }),
  ]],
  ['maxPool 1x1 identity', () => tf.maxPool(img(), 1, 1, 'valid')],
  ['avgPool 1x1 identity', () => tf.avgPool(img(), 1, 1, 'same')],
  ['pools', () => [tf.maxPool(img(), 3, 2, 1, 'ceil'), tf.avgPool(img(), 3, 2, 'same'), tf.avgPool(img(), 2, 2, 0, 'floor'),
    tf.maxPool(img(), 2, 1, 'valid')]],
  ['pool grads', () => [
    tf.grad((a: tf.Tensor) => tf.maxPool(a as tf.Tensor4D, 3, 2, 1, 'round').sum())(img()),
    tf.grad((a: tf.Tensor) => tf.avgPool(a as tf.Tensor4D, 3, 2, 1, 'ceil').sum())(img()),
    tf.grad((a: tf.Tensor) => tf.avgPool(a as tf.Tensor4D, 2, 2, 'valid').sum())(img()),
  ]],
  ['batchNorm + grad', () => {
    const x = img();
    const { mean, variance } = tf.moments(x, [0, 1, 2]);
    const y = tf.batchNorm(x, mean, variance, f32([3]) as tf.Tensor1D, f32([3]) as tf.Tensor1D, 1e-3);
    const g = tf.grads((a: tf.Tensor, s: tf.Tensor) => tf.batchNorm(a as tf.Tensor4D, mean, variance, undefined, s as tf.Tensor1D).sum())([x, f32([3])]);
    return [y, ...g];
  }],
  ['resize', () => [tf.image.resizeBilinear(img(), [9, 4]), tf.image.resizeNearestNeighbor(img(), [3, 3], true)]],
  ['resizeBilinear grad square', () => tf.grad((a: tf.Tensor) => tf.image.resizeBilinear(a as tf.Tensor4D, [9, 9]).sum())(img())],
  ['resizeBilinear grad non-square', () => tf.grad((a: tf.Tensor) => tf.image.resizeBilinear(a as tf.Tensor4D, [9, 9]).sum())(f32([1, 6, 4, 2]))],
  ['resizeNearest grad', () => tf.grad((a: tf.Tensor) => tf.image.resizeNearestNeighbor(a as tf.Tensor4D, [4, 4]).sum())(img())],
  ['flip + cropAndResize', () => [tf.image.flipLeftRight(img()),
    tf.image.cropAndResize(img(), tf.tensor2d([[0, 0, 1, 1], [0.1, 0.1, 0.5, 0.9]]), tf.tensor1d([0, 1], 'int32'), [4, 5])]],
  ['dropout', () => tf.dropout(f32([4, 4]), 0.5, undefined, 3)],
  ['relu grad chain', () => tf.grad((a: tf.Tensor) => tf.relu(a).mul(a).mean())(f32([3, 4]))],
  ['softmax cross-entropy grad', () => tf.grad((l: tf.Tensor) => tf.losses.softmaxCrossEntropy(tf.oneHot(tf.tensor1d([1, 0], 'int32'), 3), l))(f32([2, 3]))],
  ['concat grad', () => tf.grad((a: tf.Tensor) => tf.concat([a, a.mul(2)], 1).sum())(f32([2, 3]))],
  // Errors must surface just as on the real backend.
  ['error: reshape size', () => run('Reshape', { x: f32([2, 3]) }, { shape: [4, 2] })],
  ['error: concat shapes', () => run('Concat', [f32([2, 3]), f32([3, 3])], { axis: 1 })],
  ['error: broadcast', () => run('Add', { a: f32([2, 3]), b: f32([4]) })],
  ['error: softmax dim', () => run('Softmax', { logits: f32([2, 3]) }, { dim: 0 })],
  ['error: sum axis', () => run('Sum', { x: f32([2, 3]) }, { axis: [5], keepDims: false })],
  ['error: matMul inner', () => run('BatchMatMul', { a: f32([1, 2, 3]), b: f32([1, 4, 5]) }, { transposeA: false, transposeB: false })],
  ['error: matMul int', () => run('BatchMatMul', { a: tf.fill([1, 2, 3], 1, 'int32'), b: tf.fill([1, 3, 2], 1, 'int32') }, { transposeA: false, transposeB: false })],
  ['error: conv2d channels', () => tf.conv2d(img(), f32([3, 3, 4, 2]) as tf.Tensor4D, 1, 'same')],
  ['error: conv2d kernel pad', () => run('Conv2D', { x: img(), filter: f32([3, 3, 3, 2]) }, { strides: 1, pad: 'bogus', dataFormat: 'NHWC', dilations: 1 })],
  ['error: maxPool int', () => tf.maxPool(tf.fill([1, 4, 4, 1], 1, 'int32') as tf.Tensor4D, 2, 2, 'valid')],
  ['error: slice out of range', () => run('Slice', { x: f32([2, 3]) }, { begin: [1, 0], size: [2, 3] })],
  ['error: stack shapes', () => tf.stack([f32([2, 3]), f32([3, 2])])],
  ['error: expandDims axis', () => run('ExpandDims', { input: f32([2, 3]) }, { dim: -4 })],
];

function runCase(fn: () => tf.Tensor | tf.Tensor[]): CaseResult {
  const before = mem();
  let duringOp: MemSnapshot | undefined;
  let outs: tf.Tensor[];
  try {
    outs = tf.tidy(() => {
      const r = fn();
      duringOp = delta(before, mem());
      return Array.isArray(r) ? r : [r];
    });
  } catch (e) {
    // Whatever the failing kernel allocated stays tracked until the next tidy clean-up; the engine
    // holds it in the aborted scope, so only the message is compared.
    return { error: (e as Error).message.replaceAll(`'${tf.getBackend()}'`, "'<backend>'") };
  }
  const afterTidy = delta(before, mem());
  const outputs = outs.map((t) => ({ shape: t.shape, dtype: t.dtype }));
  tf.dispose(outs);
  return { outputs, duringOp, afterTidy, afterDispose: delta(before, mem()) };
}

async function runCases(backend: string): Promise<Map<string, CaseResult>> {
  await tf.setBackend(backend);
  const results = new Map<string, CaseResult>();
  for (const [name, fn, cpuOnly] of CASES) {
    if (cpuOnly == null || backend === 'cpu' || backend === META_BACKEND_NAME) results.set(name, runCase(fn));
  }
  return results;
}

describe('meta backend: op by op against the real backends', () => {
  let cpu: Map<string, CaseResult>;
  let meta: Map<string, CaseResult>;
  let wasm: Map<string, CaseResult>;
  let metaWasm: Map<string, CaseResult>;

  beforeAll(async () => {
    cpu = await runCases('cpu');
    meta = await runCases(META_BACKEND_NAME);
    wasm = await runCases('wasm');
    metaWasm = await runCases(META_WASM_BACKEND_NAME);
  });
  afterAll(async () => {
    await tf.setBackend('cpu');
  });

  it.each(CASES.map(([name]) => name))("'meta' matches cpu: %s", (name) => {
    expect(meta.get(name)).toEqual(cpu.get(name));
  });

  it.each(CASES.filter(([, , cpuOnly]) => cpuOnly == null).map(([name]) => name))("'meta-wasm' matches wasm: %s", (name) => {
    expect(metaWasm.get(name)).toEqual(wasm.get(name));
  });

  it('the cases exercise aliasing, errors and the cpu/wasm differences', () => {
    // Reshape aliases on both: no new buffer while the input is alive.
    expect(cpu.get('reshape')?.duringOp?.numDataBuffers).toBe(1);
    expect(wasm.get('reshape')?.duringOp?.numDataBuffers).toBe(1);
    // Identity: cpu aliases, wasm copies.
    expect(cpu.get('clone')?.duringOp?.numDataBuffers).toBe(1);
    expect(wasm.get('clone')?.duringOp?.numDataBuffers).toBe(2);
    // A non-square ResizeBilinear gradient fails on cpu (its grad kernel swaps height and width).
    expect(cpu.get('resizeBilinear grad non-square')?.error).toMatch(/shape/);
    expect(wasm.get('resizeBilinear grad non-square')?.outputs?.[0]?.shape).toEqual([1, 6, 4, 2]);
    expect(wasm.get('conv2d grads')?.error).toMatch(/Conv2DBackpropFilter/);
    for (const [name] of CASES.filter(([n]) => n.startsWith('error:') && n !== 'error: matMul int' && n !== 'error: maxPool int')) {
      expect(cpu.get(name)?.error, name).toBeDefined();
    }
    expect(wasm.get('error: maxPool int')?.error).toMatch(/only float32/);
  });
});

describe('meta-wasm with the project\'s wasm training kernels', () => {
  afterAll(async () => {
    await tf.setBackend('cpu');
  });

  it('registerMetaWasmTrainingKernels adds Conv2DBackpropFilter to meta-wasm, once', async () => {
    expect(metaKernelNames('wasm')).not.toContain('Conv2DBackpropFilter');
    expect(registerMetaWasmTrainingKernels()).toEqual(['Conv2DBackpropFilter']);
    expect(registerMetaWasmTrainingKernels()).toEqual([]);
    expect(metaKernelNames('wasm')).toContain('Conv2DBackpropFilter');
    expect(tf.getKernelsForBackend(META_WASM_BACKEND_NAME).length).toBe(metaKernelNames('wasm').length);
    await tf.setBackend(META_WASM_BACKEND_NAME);
    const before = mem();
    const x = tf.fill([2, 8, 8, 3], 1);
    const w = tf.fill([3, 3, 3, 4], 1);
    const [dx, dw] = tf.grads((a: tf.Tensor, f: tf.Tensor) => tf.conv2d(a as tf.Tensor4D, f as tf.Tensor4D, 2, 'same').sum())([x, w]) as [tf.Tensor, tf.Tensor];
    expect(dx.shape).toEqual([2, 8, 8, 3]);
    expect(dw.shape).toEqual([3, 3, 3, 4]);
    expect(dw.dtype).toBe('float32');
    tf.dispose([x, w, dx, dw]);
    expect(mem()).toEqual(before);
  });
});
