/**
 * What bounding tfjs-webgpu's buffer pool (src/backend/webgpu/pool.ts) costs in speed and saves in GPU
 * memory: one process, one model per mode, rounds alternating the bound (free bytes ≤ 0.1 × in use; the oldest
 * released destroyed first, as the library does, or the largest) with tfjs's own unbounded pool; each round runs a few training steps and records ms/step and the pool's peak
 * during the round. Prints min and median per policy. Indicative on a software adapter or a loaded machine.
 *
 *   npx tsx scripts/webgpu-pool-cost.ts [--model densenet121] [--image-size 32] [--batch 2] [--modes naive,layer] [--rounds 4] [--steps 2]
 *
 * The unbounded pool's peak within a round is after the bounded rounds trimmed it, so it is a lower bound of
 * what tfjs alone holds. `--fresh` measures that instead: per mode and policy a process of its own (as bench
 * runs each configuration) and one measureTrainingStep, printing backendPeakBytes / (baseline + step peak):
 *
 *   npx tsx scripts/webgpu-pool-cost.ts --fresh [--model densenet121] [--image-size 32] [--batch 2] [--modes naive,bottleneck,layer,block]
 */
import * as tf from '@tensorflow/tfjs';
import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { measureTrainingStep } from '../src/memory/measure.js';
import { initBackend } from '../src/backend/index.js';
import { resetWebGPUPoolPeak, setWebGPUPoolFreeFraction, WEBGPU_POOL_FREE_FRACTION, webgpuPoolPeakBytes } from '../src/backend/webgpu/pool.js';
import { BUILDERS } from '../src/layers/densenet.js';
import type { DenseNetVariant, MemoryMode } from '../src/layers/config.js';
import { MEASURING_OPTIMIZER, paramGroups, trainingStep } from '../src/step/step.js';
import { TrainingOptimizer } from '../src/step/optimizers.js';
import { median } from '../src/util/stats.js';

const { values } = parseArgs({
  options: {
    model: { type: 'string', default: 'densenet121' },
    'image-size': { type: 'string', default: '32' },
    batch: { type: 'string', default: '2' },
    modes: { type: 'string', default: 'naive,layer' },
    rounds: { type: 'string', default: '4' },
    steps: { type: 'string', default: '2' },
    fresh: { type: 'boolean', default: false },
    child: { type: 'string' },
  },
});
const imageSize = Number(values['image-size']);
const batch = Number(values.batch);
const rounds = Number(values.rounds);
const steps = Number(values.steps);
if (values.child !== undefined) {
  // One fresh measurement: the bound set before the backend allocates anything.
  const [mode, fraction] = values.child.split(':') as [MemoryMode, string];
  await initBackend('webgpu');
  setWebGPUPoolFreeFraction(tf.backend(), Number(fraction));
  const model = BUILDERS[values.model as DenseNetVariant]({ numClasses: 4, inputShape: [imageSize, imageSize, 3], memoryMode: mode, seed: 1 });
  const m = await measureTrainingStep({ model, batchSize: batch, seed: 1 });
  process.stdout.write(JSON.stringify({ baselineBytes: m.baselineBytes, stepPeakBytes: m.stepPeakBytes, peakBytes: m.peakBytes, backendPeakBytes: m.backendPeakBytes }) + '\n');
  process.exit(0);
}
if (values.fresh) {
  console.log(`${values.model} ${imageSize}² batch ${batch} on webgpu, one process per mode and policy: GPU / (baseline + step peak)`);
  for (const mode of (values.modes as string).split(',')) {
    const row: string[] = [];
    for (const [name, fraction] of [[`bounded ${WEBGPU_POOL_FREE_FRACTION}`, WEBGPU_POOL_FREE_FRACTION], ['unbounded (tfjs)', Infinity]] as const) {
      const args = ['--import', 'tsx', fileURLToPath(import.meta.url), '--model', values.model as string, '--image-size', String(imageSize), '--batch', String(batch), '--child', `${mode}:${fraction}`];
      const out = execFileSync(process.execPath, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
      const m = JSON.parse(out.trim().split('\n').pop()!) as { peakBytes: number; backendPeakBytes: number; baselineBytes: number; stepPeakBytes: number };
      row.push(`${name} ${m.backendPeakBytes} B = ${(m.backendPeakBytes / m.peakBytes).toFixed(3)}×`);
      if (fraction !== Infinity) row.unshift(`baseline ${m.baselineBytes} + step ${m.stepPeakBytes} = ${m.peakBytes} B`);
    }
    console.log(`  ${mode.padEnd(10)} ${row.join('; ')}`);
  }
  process.exit(0);
}
await initBackend('webgpu');
const backend = tf.backend();
const policies = [
  { name: `bounded ${WEBGPU_POOL_FREE_FRACTION}, oldest first`, fraction: WEBGPU_POOL_FREE_FRACTION, order: 'oldest' as const },
  { name: `bounded ${WEBGPU_POOL_FREE_FRACTION}, largest first`, fraction: WEBGPU_POOL_FREE_FRACTION, order: 'largest' as const },
  { name: 'unbounded (tfjs)', fraction: Infinity, order: 'oldest' as const },
];
const mib = (b: number) => (b / 2 ** 20).toFixed(1);
console.log(`${values.model} ${imageSize}² batch ${batch} on webgpu, ${rounds} rounds × ${steps} steps per policy, alternated`);
for (const mode of (values.modes as string).split(',') as MemoryMode[]) {
  const model = BUILDERS[values.model as DenseNetVariant]({ numClasses: 4, inputShape: [imageSize, imageSize, 3], memoryMode: mode, seed: 1 });
  const optimizer = new TrainingOptimizer(MEASURING_OPTIMIZER);
  const groups = paramGroups(model);
  const xs = tf.randomNormal([batch, imageSize, imageSize, 3], 0, 1, 'float32', 1);
  const ys = tf.oneHot(tf.tensor1d(Array.from({ length: batch }, (_, i) => i % 4), 'int32'), 4);
  const step = async () => {
    const { loss, correct } = trainingStep(model, optimizer, xs, ys, groups);
    await loss.data();
    tf.dispose([loss, correct]);
  };
  await step(); // warm-up: shaders, optimizer state
  const times = new Map<string, number[]>(policies.map((p) => [p.name, []]));
  const peaks = new Map<string, number[]>(policies.map((p) => [p.name, []]));
  for (let round = 0; round < rounds; round++) {
    for (const policy of round % 2 === 0 ? policies : [...policies].reverse()) {
      setWebGPUPoolFreeFraction(backend, policy.fraction, policy.order);
      resetWebGPUPoolPeak(backend);
      for (let s = 0; s < steps; s++) {
        const start = performance.now();
        await step();
        times.get(policy.name)!.push(performance.now() - start);
      }
      peaks.get(policy.name)!.push(webgpuPoolPeakBytes(backend) ?? NaN);
    }
  }
  for (const policy of policies) {
    const t = times.get(policy.name)!;
    const p = peaks.get(policy.name)!;
    console.log(`  ${mode.padEnd(10)} ${policy.name.padEnd(34)} ms/step min ${Math.min(...t).toFixed(0)} median ${median(t).toFixed(0)}; pool peak per round max ${mib(Math.max(...p))} MiB`);
  }
  const medians = policies.map((p) => median(times.get(p.name)!));
  for (const [i, policy] of policies.slice(0, -1).entries()) {
    console.log(`  ${mode.padEnd(10)} ${policy.name} / unbounded, median time: ${(medians[i]! / medians.at(-1)!).toFixed(3)}`);
  }
  setWebGPUPoolFreeFraction(backend, WEBGPU_POOL_FREE_FRACTION);
  tf.dispose([xs, ys]);
  optimizer.dispose();
  model.dispose();
}
