/**
 * What data-parallel synchronization costs, alternated in one process: 1 worker, 2 workers with synchronized
 * batch norm at each barrier spin (split-phase backward gathers), the same without split phases (waiting at
 * once, the earlier behaviour), and 2 workers without synchronized batch norm (PyTorch DDP's default). Each configuration gets a
 * fresh WorkerPool per round (the order reversed every other round), a warm-up step and --steps timed steps;
 * the summary is the min and median over every timed step, with each worker's profile (barriers per step,
 * ms waiting at them, ms of the gradient sum and update) from protocol.ts's StepProfile.
 *
 *   npx tsx scripts/bench-sync.ts [--model densenet121] [--image-size 64] [--batch 8] [--mode layer]
 *                                 [--steps 3] [--rounds 3] [--spin 0,50] [--backend wasm] [--json]
 *
 * The 1-worker row is a pool of one (the same messages, no barriers), so the ratios isolate the
 * synchronization; `bench --workers 1,2 --ceiling --repeat R` gives the parallel efficiency against two
 * independent processes.
 */
import * as tf from '@tensorflow/tfjs';
import { initBackend, type BackendName } from '../src/backend/index.js';
import { BUILDERS } from '../src/layers/densenet.js';
import type { DenseNetVariant, MemoryMode } from '../src/layers/config.js';
import { WorkerPool } from '../src/parallel/pool.js';
import type { StepProfile } from '../src/parallel/protocol.js';
import { classifierIndices, MEASURING_OPTIMIZER } from '../src/step/step.js';
import { median } from '../src/util/stats.js';

const args = process.argv.slice(2);
const arg = (name: string, fallback: string) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? args[i + 1]! : fallback;
};
const model = arg('model', 'densenet121') as DenseNetVariant;
const imageSize = Number(arg('image-size', '64'));
const batch = Number(arg('batch', '8'));
const mode = arg('mode', 'layer') as MemoryMode;
const steps = Number(arg('steps', '3'));
const rounds = Number(arg('rounds', '3'));
const spins = arg('spin', '0,50').split(',').map(Number);
const backend = arg('backend', 'wasm') as BackendName;

interface Config {
  label: string;
  workers: number;
  syncBatchNorm: boolean;
  spin: number;
  splitPhase: boolean;
}
const configs: Config[] = [
  { label: '1 worker', workers: 1, syncBatchNorm: true, spin: 0, splitPhase: true },
  ...spins.map((spin) => ({ label: `2 workers, sync BN, spin ${spin} µs`, workers: 2, syncBatchNorm: true, spin, splitPhase: true })),
  { label: `2 workers, sync BN, spin ${spins[0]} µs, no split`, workers: 2, syncBatchNorm: true, spin: spins[0]!, splitPhase: false },
  { label: '2 workers, no sync BN (DDP)', workers: 2, syncBatchNorm: false, spin: spins[0]!, splitPhase: true },
];

await initBackend(backend);
const net = BUILDERS[model]({ numClasses: 4, inputShape: [imageSize, imageSize, 3], memoryMode: mode, seed: 1 });
const xs = tf.randomNormal([batch, imageSize, imageSize, 3], 0, 1, 'float32', 1);
const ys = tf.tidy(() => tf.oneHot(tf.randomUniform([batch], 0, 4, 'int32', 1), 4));
const times = configs.map(() => [] as number[]);
const profiles = configs.map(() => [] as StepProfile[][]);

for (let round = 0; round < rounds; round++) {
  const order = configs.map((_, i) => i);
  if (round % 2 === 1) order.reverse();
  for (const i of order) {
    const c = configs[i]!;
    const pool = await WorkerPool.start({
      workers: c.workers, model: net, optimizer: { ...MEASURING_OPTIMIZER, featuresLrScale: 1 }, classifier: classifierIndices(net), syncBatchNorm: c.syncBatchNorm, barrierSpinMicros: c.spin, splitPhase: c.splitPhase,
    });
    try {
      const step = (n: number) => pool.step({ xs, ys, lr: MEASURING_OPTIMIZER.lr, features: true, dropout: { seed: 1, step: [n] } });
      await step(0);
      await step(0); // two warm-up steps, as the benchmark (WARMUP_STEPS)
      for (let s = 1; s <= steps; s++) {
        const start = performance.now();
        await step(s);
        times[i]!.push(performance.now() - start);
        profiles[i]!.push(pool.lastStepProfiles);
      }
    } finally {
      await pool.close();
    }
    process.stderr.write(`round ${round + 1}: ${c.label} ${times[i]!.slice(-steps).map((t) => t.toFixed(0)).join(', ')} ms\n`);
  }
}

const summary = configs.map((c, i) => {
  const t = times[i]!;
  const per = (f: (p: StepProfile) => number) => median(profiles[i]!.map((ps) => Math.max(...ps.map(f))));
  return {
    config: c.label,
    minMs: Math.min(...t),
    medianMs: median(t),
    barriersPerStep: profiles[i]![0]!.map((p) => p.barriers),
    waitMs: per((p) => p.waitMs),
    gradientMs: per((p) => p.gradientMs),
  };
});
const one = summary[0]!;
if (args.includes('--json')) {
  process.stdout.write(`${JSON.stringify({ model, imageSize, batch, mode, backend, steps, rounds, summary }, null, 2)}\n`);
} else {
  process.stdout.write(`${model} ${imageSize}² batch ${batch} ${mode} on ${backend}: ${rounds} alternated rounds × ${steps} steps (min / median ms)\n`);
  for (const s of summary) {
    const speedup = `${(one.minMs / s.minMs).toFixed(2)} / ${(one.medianMs / s.medianMs).toFixed(2)}`;
    process.stdout.write(
      `${s.config.padEnd(36)} ${s.minMs.toFixed(0).padStart(6)} / ${s.medianMs.toFixed(0).padStart(6)} ms  speedup ${speedup}  barriers ${s.barriersPerStep.join('/')}  ` +
        `waiting ${s.waitMs.toFixed(0)} ms  gradient sum+update ${s.gradientMs.toFixed(0)} ms (median, slowest worker)\n`,
    );
  }
}
tf.dispose([xs, ys]);
net.dispose();
