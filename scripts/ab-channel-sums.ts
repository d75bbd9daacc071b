/**
 * A/B of the batch-norm reductions on wasm, in one process: the float64 pass (channel-sums.ts, current) and
 * the old float32 tfjs reductions (setChannelSumsPath('ops')), alternating step by step on the same model,
 * so load and warm-up hit both alike. DenseNet-121 (4 classes), 112², batch 8, SGD momentum, every memory mode.
 * Prints the median ms/step of each path per mode and new/old − 1. Run it on a quiet machine.
 *
 *   npx tsx scripts/ab-channel-sums.ts [--steps 8] [--size 112] [--batch 8] [--modes naive,bottleneck,layer]
 */
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../src/backend/index.js';
import { setChannelSumsPath, type ChannelSumsPath } from '../src/norm/channel-sums.js';
import type { MemoryMode } from '../src/layers/config.js';
import { densenet121 } from '../src/layers/index.js';
import { TrainingOptimizer, trainingStep } from '../src/step/step.js';
import { median } from '../src/util/stats.js';

function option(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && process.argv[i + 1] ? process.argv[i + 1]! : fallback;
}
const steps = Number(option('steps', '8'));
const size = Number(option('size', '112'));
const batch = Number(option('batch', '8'));
const modes = option('modes', 'naive,bottleneck,layer').split(',') as MemoryMode[];

await initBackend('wasm');
const xs = tf.randomNormal([batch, size, size, 3], 0, 1, 'float32', 1);
const ys = tf.oneHot(tf.tensor1d(Array.from({ length: batch }, (_, i) => i % 4), 'int32'), 4);
const paths: { label: string; path: ChannelSumsPath | undefined }[] = [
  { label: 'old (float32 tfjs reductions)', path: 'ops' },
  { label: 'new (float64 pass)', path: undefined },
];
console.log(`DenseNet-121, ${size}², batch ${batch}, wasm; ${steps} alternating steps per path after one warm-up each`);
for (const mode of modes) {
  const model = densenet121({ numClasses: 4, memoryMode: mode, inputShape: [size, size, 3] });
  const optimizer = new TrainingOptimizer({ name: 'sgd', lr: 0.001, momentum: 0.9, weightDecay: 0 });
  const times: number[][] = paths.map(() => []);
  for (let round = -1; round < steps; round++) {
    // Alternate which path goes first, so neither always follows the other.
    const order = round % 2 === 0 ? [0, 1] : [1, 0];
    for (const p of order) {
      setChannelSumsPath(paths[p]!.path);
      const start = performance.now();
      const { loss, correct } = trainingStep(model, optimizer, xs, ys);
      loss.dataSync();
      const ms = performance.now() - start;
      tf.dispose([loss, correct]);
      if (round >= 0) times[p]!.push(ms);
    }
  }
  setChannelSumsPath(undefined);
  const [old, now] = times.map(median) as [number, number];
  console.log(`${mode}: old ${old.toFixed(0)} ms/step, new ${now.toFixed(0)} ms/step, new/old − 1 = ${((now / old - 1) * 100).toFixed(1)}%` +
    ` (old ${times[0]!.map((t) => t.toFixed(0)).join(' ')}; new ${times[1]!.map((t) => t.toFixed(0)).join(' ')})`);
  optimizer.dispose();
  model.dispose();
}
tf.dispose([xs, ys]);
