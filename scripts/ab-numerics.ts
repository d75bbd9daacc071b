/**
 * A/B of the step time on wasm with `fast` and `exact` numerics (src/backend/numerics.ts), in one process,
 * alternating step by step on the same model so load and warm-up hit both alike. DenseNet-121 (4 classes),
 * SGD momentum. Prints min and median ms/step of each and exact/fast − 1 per memory mode.
 *
 *   node --import tsx scripts/ab-numerics.ts [--steps 4] [--size 112] [--batch 16] [--modes layer]
 */
import * as tf from '@tensorflow/tfjs';
import { initBackend, setNumerics } from '../src/backend/index.js';
import { NUMERICS_NAMES } from '../src/backend/numerics.js';
import type { MemoryMode } from '../src/layers/config.js';
import { densenet121 } from '../src/layers/index.js';
import { TrainingOptimizer, trainingStep } from '../src/step/step.js';
import { median } from '../src/util/stats.js';

function option(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && process.argv[i + 1] ? process.argv[i + 1]! : fallback;
}
const steps = Number(option('steps', '4'));
const size = Number(option('size', '112'));
const batch = Number(option('batch', '16'));
const modes = option('modes', 'layer').split(',') as MemoryMode[];

await initBackend('wasm');
const xs = tf.randomNormal([batch, size, size, 3], 0, 1, 'float32', 1);
const ys = tf.oneHot(tf.tensor1d(Array.from({ length: batch }, (_, i) => i % 4), 'int32'), 4);
console.log(`DenseNet-121, ${size}², batch ${batch}, wasm; ${steps} alternating steps per numerics after one warm-up each`);
for (const mode of modes) {
  const model = densenet121({ numClasses: 4, memoryMode: mode, inputShape: [size, size, 3] });
  const optimizer = new TrainingOptimizer({ name: 'sgd', lr: 0.001, momentum: 0.9, weightDecay: 0 });
  const times: number[][] = NUMERICS_NAMES.map(() => []);
  for (let round = -1; round < steps; round++) {
    const order = round % 2 === 0 ? [0, 1] : [1, 0];
    for (const p of order) {
      await setNumerics(NUMERICS_NAMES[p]!);
      const start = performance.now();
      const { loss, correct } = trainingStep(model, optimizer, xs, ys);
      loss.dataSync();
      const ms = performance.now() - start;
      tf.dispose([loss, correct]);
      if (round >= 0) times[p]!.push(ms);
    }
  }
  const cols = NUMERICS_NAMES.map((n, i) => `${n} ${Math.min(...times[i]!).toFixed(0)}/${median(times[i]!).toFixed(0)}`);
  const [fast, exact] = times.map((t) => Math.min(...t)) as [number, number];
  const [fastMed, exactMed] = times.map(median) as [number, number];
  console.log(`${mode}: ms/step min/median ${cols.join(', ')}; exact/fast − 1 = ${((exact / fast - 1) * 100).toFixed(0)}% (min), ` +
    `${((exactMed / fastMed - 1) * 100).toFixed(0)}% (median)`);
  optimizer.dispose();
  model.dispose();
}
await setNumerics('fast');
tf.dispose([xs, ys]);
