/**
 * A training run in its own process, for tests that kill it: `node --import tsx test/helpers/train-child.ts
 * '<json options>'`. Prints one JSON line per finished batch ({ epoch, batch }) and, at the end, { done: true }.
 * Each batch waits `batchDelayMs` so that a kill issued on seeing a batch lands inside the same epoch.
 */
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../../src/backend/index.js';
import { trainDenseNet, type TrainDenseNetOptions } from '../../src/train/index.js';

interface ChildOptions {
  train: Omit<TrainDenseNetOptions, 'callbacks' | 'logger' | 'progress'>;
  backend: 'cpu' | 'wasm';
  batchDelayMs?: number;
}

const options = JSON.parse(process.argv[2] ?? '{}') as ChildOptions;
await initBackend(options.backend);
const delay = options.batchDelayMs ?? 0;
const result = await trainDenseNet({
  ...options.train,
  callbacks: {
    onBatchEnd: async ({ epoch, batch }) => {
      process.stdout.write(`${JSON.stringify({ epoch, batch })}\n`);
      if (delay > 0) await new Promise((resolve) => setTimeout(resolve, delay));
    },
  },
});
result.model.dispose();
process.stdout.write(`${JSON.stringify({ done: true, epochs: result.history.length, numTensors: tf.memory().numTensors })}\n`);
