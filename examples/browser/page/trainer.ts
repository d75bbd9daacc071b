/**
 * Training and measuring in the page, through the library's public API only (models, memory modes,
 * initBackend, measureTrainingStep, softmaxCrossEntropy; torchvision export from /weights).
 */
import * as tf from '@tensorflow/tfjs';
import {
  createDenseNet,
  densenet121,
  initBackend,
  measureTrainingStep,
  MEMORY_MODES,
  setMemoryMode,
  softmaxCrossEntropy,
  type Logger,
  type MemoryMode,
} from 'efficient-densenet-tfjs';
import { torchvisionSafetensorsBytes } from 'efficient-densenet-tfjs/weights';
import { createRng, drawSynthetic, sample, type ImageSet } from './task.js';

export { MEMORY_MODES, type MemoryMode };

export type ModelChoice = 'small' | 'densenet121';

export const MODELS: Record<ModelChoice, { label: string; imageSize: number; build(numClasses: number, seed: number): tf.LayersModel }> = {
  small: {
    label: 'small DenseNet (k=12, 3-3-3, 32²)',
    imageSize: 32,
    build: (numClasses, seed) =>
      createDenseNet({ growthRate: 12, blockConfig: [3, 3, 3], numInitFeatures: 24, bnSize: 4, dropRate: 0, numClasses, inputShape: [32, 32, 3], seed }),
  },
  densenet121: {
    label: 'DenseNet-121 at 64²',
    imageSize: 64,
    build: (numClasses, seed) => densenet121({ numClasses, inputShape: [64, 64, 3], seed }),
  },
};

/** Every dense block of the model in one mode (the library switches layers in place, weights untouched). */
export function applyMode(model: tf.LayersModel, mode: MemoryMode): void {
  setMemoryMode(model, mode);
}

/** The wasm binaries are copied next to the bundle (examples/browser/build.ts). */
export function startBackend(name: string, logger: Logger): Promise<string> {
  return initBackend(name, { logger, wasmPaths: new URL('./', document.baseURI).href });
}

export interface ModeMemory {
  /** Distinct tensor buffers at the step's peak above what is held before it (the library's headline). */
  stepPeakBytes: number;
  /** tf.profile's peakBytes above the same baseline (counts views and saved clones again). */
  engineStepPeakBytes: number;
  msPerStep: number;
}

/** The modes' training-step peaks on a fresh model of the choice (random batch, one step each). */
export async function measureModes(
  choice: ModelChoice,
  modes: readonly MemoryMode[],
  batchSize: number,
  numClasses: number,
  onMode: (mode: MemoryMode, memory: ModeMemory) => void,
): Promise<Partial<Record<MemoryMode, ModeMemory>>> {
  const model = MODELS[choice].build(numClasses, 7);
  const out: Partial<Record<MemoryMode, ModeMemory>> = {};
  try {
    for (const mode of modes) {
      applyMode(model, mode);
      const m = await measureTrainingStep({ model, batchSize, steps: 1, seed: 1 });
      out[mode] = { stepPeakBytes: m.stepPeakBytes, engineStepPeakBytes: m.engine.stepPeakBytes, msPerStep: m.msPerStep };
      onMode(mode, out[mode]!);
      await yieldToPage();
    }
  } finally {
    model.dispose();
  }
  return out;
}

export interface TrainOptions {
  choice: ModelChoice;
  mode: MemoryMode;
  batchSize: number;
  steps: number;
  learningRate: number;
  /** Stop once validation accuracy reaches this (0: never). */
  target: number;
  evalEvery: number;
  /** Dropped images, split into train/val; absent: the synthetic task. */
  images?: { train: ImageSet; val: ImageSet };
  shouldStop(): boolean;
  onStep(progress: StepProgress): void;
  onEval(progress: EvalProgress): void;
}

export interface StepProgress {
  step: number;
  loss: number;
  batchAccuracy: number;
  /** Images per second of the training steps so far (the step's own time, data drawing left out). */
  imagesPerSecond: number;
  seconds: number;
}

export interface EvalProgress {
  step: number;
  valAccuracy: number;
}

export interface TrainResult {
  model: tf.LayersModel;
  classNames: string[];
  steps: number;
  valAccuracy: number;
  imagesPerSecond: number;
  seconds: number;
  stoppedBy: 'target' | 'steps' | 'user';
}

/** A MessageChannel turn, not setTimeout: not throttled in a background tab, and the page repaints meanwhile. */
export function yieldToPage(): Promise<void> {
  return new Promise((resolve) => {
    const channel = new MessageChannel();
    channel.port1.onmessage = () => resolve();
    channel.port2.postMessage(null);
  });
}

function batchTensors(set: ImageSet, numClasses: number): { xs: tf.Tensor4D; ys: tf.Tensor2D; labels: tf.Tensor1D } {
  const n = set.labels.length;
  const xs = tf.tensor4d(set.pixels, [n, set.size, set.size, 3]);
  const labels = tf.tensor1d(set.labels, 'int32');
  return { xs, ys: tf.oneHot(labels, numClasses) as tf.Tensor2D, labels };
}

/** Accuracy of the model (inference mode: batch norm's running statistics) on a set, 64 images at a time. */
export async function accuracy(model: tf.LayersModel, set: ImageSet): Promise<number> {
  const stride = set.size * set.size * 3;
  let correct = 0;
  for (let start = 0; start < set.labels.length; start += 64) {
    const end = Math.min(set.labels.length, start + 64);
    const predicted = tf.tidy(() => {
      const xs = tf.tensor4d(set.pixels.subarray(start * stride, end * stride), [end - start, set.size, set.size, 3]);
      return tf.argMax(model.apply(xs, { training: false }) as tf.Tensor, 1);
    });
    const values = await predicted.data();
    predicted.dispose();
    values.forEach((p, i) => (correct += p === set.labels[start + i] ? 1 : 0));
  }
  return correct / set.labels.length;
}

export async function train(options: TrainOptions): Promise<TrainResult> {
  const { choice, batchSize } = options;
  const size = MODELS[choice].imageSize;
  const rng = createRng(1);
  const val = options.images?.val ?? drawSynthetic(256, size, createRng(12345));
  const classNames = val.classNames;
  const numClasses = classNames.length;
  const model = MODELS[choice].build(numClasses, 1);
  applyMode(model, options.mode);
  const optimizer = tf.train.adam(options.learningRate);
  let stepSeconds = 0;
  let images = 0;
  let valAccuracy = 0;
  let step = 0;
  let stoppedBy: TrainResult['stoppedBy'] = 'steps';
  const started = performance.now();
  try {
    while (step < options.steps) {
      if (options.shouldStop()) {
        stoppedBy = 'user';
        break;
      }
      const batch = options.images ? sample(options.images.train, batchSize, rng) : drawSynthetic(batchSize, size, rng);
      const { xs, ys, labels } = batchTensors(batch, numClasses);
      const t0 = performance.now();
      let batchAccuracy: tf.Scalar | undefined;
      const loss = optimizer.minimize(() => {
        const logits = model.apply(xs, { training: true }) as tf.Tensor;
        batchAccuracy = tf.keep(tf.mean(tf.cast(tf.equal(tf.argMax(logits, 1), labels), 'float32')) as tf.Scalar);
        return softmaxCrossEntropy(ys, logits) as tf.Scalar;
      }, true)!;
      const [lossValue, accuracyValue] = await Promise.all([loss.data(), batchAccuracy!.data()]);
      stepSeconds += (performance.now() - t0) / 1000;
      images += batchSize;
      step++;
      tf.dispose([xs, ys, labels, loss, batchAccuracy!]);
      options.onStep({ step, loss: lossValue[0], batchAccuracy: accuracyValue[0], imagesPerSecond: images / stepSeconds, seconds: (performance.now() - started) / 1000 });
      if (step % options.evalEvery === 0 || step === options.steps) {
        valAccuracy = await accuracy(model, val);
        options.onEval({ step, valAccuracy });
        if (options.target > 0 && valAccuracy >= options.target) {
          stoppedBy = 'target';
          break;
        }
      }
      await yieldToPage();
    }
  } finally {
    optimizer.dispose();
  }
  return { model, classNames, steps: step, valAccuracy, imagesPerSecond: images / Math.max(stepSeconds, 1e-9), seconds: (performance.now() - started) / 1000, stoppedBy };
}

/** Saves a file from the page (an object URL on a temporary link). */
export function downloadBytes(bytes: Uint8Array, fileName: string, type = 'application/octet-stream'): void {
  const url = URL.createObjectURL(new Blob([bytes as BlobPart], { type }));
  const link = document.createElement('a');
  link.href = url;
  link.download = fileName;
  link.click();
  setTimeout(() => URL.revokeObjectURL(url), 10_000);
}

/** The trained model in tfjs format (model.json + weights.bin, the browser's downloads). */
export async function downloadTfjs(model: tf.LayersModel): Promise<void> {
  await model.save('downloads://densenet-browser-demo');
}

/** The trained model as a torchvision state_dict in safetensors (PyTorch loads it with strict=True). */
export async function downloadSafetensors(model: tf.LayersModel): Promise<void> {
  downloadBytes(await torchvisionSafetensorsBytes(model), 'densenet-browser-demo.safetensors');
}
