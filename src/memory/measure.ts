/**
 * measureTrainingStep: the memory and the time of one DenseNet training step.
 * Memory is exact tensor bytes from tfjs's engine bookkeeping, the same on every backend including `meta`,
 * comparable to PyTorch's allocator-level peak above the step's starting point. Two accountings:
 * - buffers (the headline): distinct data buffers, what a backend must hold;
 * - engine: `tf.profile().peakBytes`, which adds a tensor's size once per tensor object, so views and the
 *   tape's saved clones of a buffer count again.
 */
import * as tf from '@tensorflow/tfjs';
import { backendTraits } from '../backend/traits.js';
import { MEASURING_OPTIMIZER, paramGroups, trainingStep } from '../step/step.js';
import { TrainingOptimizer, type OptimizerSettings } from '../step/optimizers.js';
import { backendPeakBytes } from './backend-memory.js';
import { inputImageSize } from '../layers/densenet.js';
import { BufferTracker, distinctBufferBytes } from './buffer-tracker.js';
import { UsageError } from '../util/errors.js';
import { integer } from '../util/validate.js';
import { median } from '../util/stats.js';

export interface MeasureTrainingStepOptions {
  /** A model with NHWC image input and logits output. */
  model: tf.LayersModel;
  /** Images per step. */
  batchSize: number;
  /** Square input size; default: the model's input size. */
  imageSize?: number;
  /** Classes of the random labels; default: the model's output width. */
  numClasses?: number;
  /**
   * The optimizer of the step (its state counts in the baseline): settings, or a TrainingOptimizer of the
   * caller's (kept). Default: MEASURING_OPTIMIZER, SGD with Nesterov momentum 0.9 at learning rate 0.01.
   */
  optimizer?: OptimizerSettings | TrainingOptimizer;
  /** Timed steps after the profiled one (median reported; default 1). */
  steps?: number;
  /** Seed of the random batch. */
  seed?: number;
}

/** Peak tensor memory of a step in one accounting. */
export interface MemoryPeak {
  /** Peak bytes during the measured step above `baselineBytes`. */
  stepPeakBytes: number;
  /** Bytes just before the measured step: the model's weights, the optimizer's state and the batch. */
  baselineBytes: number;
  /** Peak bytes during the measured step. */
  peakBytes: number;
}

export interface StepMeasurement extends MemoryPeak {
  /** tfjs's own accounting (`tf.profile`), which counts every tensor object, views and saved clones included. */
  engine: MemoryPeak;
  /** Median wall time of the timed steps (ms). */
  msPerStep: number;
  /** Every timed step (ms). */
  stepMs: number[];
  /** The tfjs backend that ran it. */
  backend: string;
  /** Tensors alive after the measured steps minus before them (0 when nothing leaks). */
  leakedTensors: number;
  /**
   * What the backend itself holds at its peak so far (src/memory/backend-memory.ts): wasm heap, cpu peak RSS,
   * GPU memory on tensorflow, the GPU buffer pool's high-water mark on webgpu; null on meta. Per process, so
   * a step's own figure needs a fresh process (the benchmark runs each configuration in one).
   */
  backendPeakBytes: number | null;
}

/**
 * Steps run before anything is measured, in every benchmark row (tfjs in process, data-parallel workers,
 * PyTorch): the first creates the optimizer state and compiles tfjs's kernels; during the second V8 still
 * optimises the JavaScript around them and tiers the WebAssembly up, and with a single warm-up step the first
 * timed step was 15% slower than the next ones (2 wasm workers, DenseNet-121 112² batch 16: slowest of three
 * in each of ten alternated rounds, `scripts/bench-sync.ts`). A training run's step is the steady one.
 */
export const WARMUP_STEPS = 2;

/** Waits for the step's results where the backend computes (meta has nothing to wait for). */
async function settle(loss: tf.Tensor): Promise<void> {
  if (backendTraits().computes) await loss.data();
}

export async function measureTrainingStep(options: MeasureTrainingStepOptions): Promise<StepMeasurement> {
  const { model } = options;
  if (!(model instanceof tf.LayersModel)) throw new UsageError('measureTrainingStep: model must be a tf.LayersModel');
  const batchSize = integer('measureTrainingStep: batchSize', options.batchSize ?? null) as number;
  const imageSize = integer('measureTrainingStep: imageSize', options.imageSize ?? inputImageSize(model)) as number;
  const numClasses = integer('measureTrainingStep: numClasses', options.numClasses ?? model.outputs[0].shape[1] ?? null) as number;
  const steps = integer('measureTrainingStep: steps', options.steps ?? 1) as number;
  const given = options.optimizer;
  const optimizer = given instanceof TrainingOptimizer ? given : new TrainingOptimizer(given ?? MEASURING_OPTIMIZER);
  const { xs, ys, step: runStep } = repeatedTrainingStep(model, { batchSize, imageSize, numClasses, seed: options.seed, optimizer });
  try {
    for (let i = 0; i < WARMUP_STEPS; i++) await runStep(); // optimizer state, kernels, optimised JavaScript
    const tensorsBefore = tf.memory().numTensors;
    const engineBaseline = tf.memory().numBytes;
    // getState hands out clones: counted (they share the state's buffers), then freed before the step, since a
    // clone kept alive would pin the old buffers that the update replaces.
    const state = await optimizerState(optimizer);
    const baselineBytes = distinctBufferBytes([...model.weights.map((weight) => weight.read()), ...state, xs, ys]);
    tf.dispose(state);
    const tracker = new BufferTracker();
    tracker.start();
    let profile: Awaited<ReturnType<typeof tf.profile>>;
    try {
      profile = await tf.profile(runStep);
    } finally {
      tracker.stop();
    }
    const stepPeakBytes = tracker.peakBytes;
    const stepMs: number[] = [];
    for (let i = 0; i < steps; i++) {
      const start = performance.now();
      await runStep();
      stepMs.push(performance.now() - start);
    }
    const leakedTensors = tf.memory().numTensors - tensorsBefore;
    const enginePeak = Math.max(profile.peakBytes, engineBaseline);
    return {
      stepPeakBytes,
      baselineBytes,
      peakBytes: baselineBytes + stepPeakBytes,
      engine: { stepPeakBytes: enginePeak - engineBaseline, baselineBytes: engineBaseline, peakBytes: enginePeak },
      msPerStep: median(stepMs),
      stepMs,
      backend: tf.getBackend(),
      leakedTensors,
      backendPeakBytes: await backendPeakBytes(),
    };
  } finally {
    tf.dispose([xs, ys]);
    if (!(given instanceof TrainingOptimizer)) optimizer.dispose();
  }
}

/** One training step on one random batch, run again and again: the unit every benchmark times. */
export interface RepeatedStep {
  /** Runs the step; resolves once its results exist (nothing to wait for on meta). */
  step(): Promise<void>;
}

/**
 * The batch (random normal images, random one-hot labels, from `seed`) and the step that trains `model` on it
 * with `optimizer`. The caller disposes xs and ys.
 */
export function repeatedTrainingStep(
  model: tf.LayersModel,
  options: { batchSize: number; imageSize: number; numClasses: number; seed?: number; optimizer: TrainingOptimizer },
): RepeatedStep & { xs: tf.Tensor; ys: tf.Tensor } {
  const { batchSize, imageSize, numClasses, optimizer } = options;
  const groups = paramGroups(model);
  const shape = [batchSize, imageSize, imageSize, 3];
  // A shape-only backend gets a kernel-made batch: random ops fill a JavaScript array first.
  const xs = !backendTraits().computes ? tf.fill(shape, 0) : tf.randomNormal(shape, 0, 1, 'float32', options.seed);
  const ys = tf.tidy(() => tf.oneHot(tf.randomUniform([batchSize], 0, numClasses, 'int32', options.seed), numClasses));
  const step = async () => {
    const { loss, correct } = trainingStep(model, optimizer, xs, ys, groups);
    await settle(loss);
    tf.dispose([loss, correct]);
  };
  return { xs, ys, step };
}

/** The optimizer's state tensors (its iteration counters, which getState makes afresh, are left out). */
async function optimizerState(optimizer: TrainingOptimizer): Promise<tf.Tensor[]> {
  const named = await optimizer.getState();
  const counters = named.filter((w) => w.name.endsWith(':iter'));
  tf.dispose(counters.map((w) => w.tensor));
  return named.filter((w) => !counters.includes(w)).map((w) => w.tensor);
}
