/**
 * One benchmark configuration loaded in a process of its own and stepped on demand (spawned by
 * openBenchStepper; the protocol is in stepper.ts): loads the model, warms up, says it is ready, then times one
 * training step per `step` line on stdin until stdin closes. In this process alone (one worker) or on a pool
 * of workers; the same random batch and optimizer as every other benchmark row.
 */
import * as tf from '@tensorflow/tfjs';
import { createInterface } from 'node:readline';
import { initBackend, type BackendName } from '../backend/index.js';
import { repeatedTrainingStep } from '../memory/measure.js';
import { explainOutOfMemory } from '../memory/out-of-memory-advice.js';
import { TrainingOptimizer } from '../step/optimizers.js';
import { MEASURING_OPTIMIZER } from '../step/step.js';
import { benchModel, type BenchConfig } from './benchmark.js';
import { openPooledSteps } from './pooled-step.js';

const { config, backend, warmup } = JSON.parse(process.argv[2] ?? '{}') as { config: BenchConfig; backend: BackendName; warmup: number };
const say = (message: object) => process.stdout.write(`${JSON.stringify(message)}\n`);
const failure = (error: unknown) => {
  const e = explainOutOfMemory(error, { backend: tf.getBackend(), model: config.model, batchSize: config.batch, memoryMode: config.mode });
  if (!(e instanceof Error)) return String(e);
  return e.name === 'UsageError' ? `refused: ${e.message}` : e.message;
};

try {
  await initBackend(backend);
  const model = benchModel(config);
  const optimizerSettings = config.optimizer ?? MEASURING_OPTIMIZER;
  const workers = config.workers ?? 1;
  let run: { step(): Promise<void>; close(): Promise<void> };
  if (workers > 1) {
    run = await openPooledSteps(model, { batchSize: config.batch, workers, seed: 1, optimizer: optimizerSettings, syncBatchNorm: config.syncBatchNorm });
  } else {
    const optimizer = new TrainingOptimizer(optimizerSettings);
    const single = repeatedTrainingStep(model, { batchSize: config.batch, imageSize: config.imageSize, numClasses: config.numClasses, seed: 1, optimizer });
    run = { step: single.step, close: async () => (tf.dispose([single.xs, single.ys]), optimizer.dispose()) };
  }
  for (let i = 0; i < warmup; i++) await run.step();
  say({ ready: true });
  // One step at a time, in order: a line that arrives during a step waits for it.
  let queue = Promise.resolve();
  const lines = createInterface({ input: process.stdin });
  lines.on('line', (line) => {
    if (line.trim() !== 'step') return;
    queue = queue.then(async () => {
      const start = performance.now();
      try {
        await run.step();
        say({ ms: performance.now() - start });
      } catch (error) {
        say({ error: failure(error) });
      }
    });
  });
  lines.on('close', () => {
    queue = queue.then(async () => {
      await run.close();
      model.dispose();
    });
  });
} catch (error) {
  say({ error: failure(error) });
  process.exitCode = 1;
}
