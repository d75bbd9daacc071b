/**
 * Where data-parallel efficiency goes, from processes loaded once and stepped in turn (src/bench/stepper.ts):
 * one process at batch B, one at B/2 (a worker's shard), two batch-B processes at once (the machine's ceiling
 * for two), 2 workers with synchronized batch norm and 2 without (PyTorch DDP's default). Then
 *
 *   parallelEfficiency = ceiling / (2 · pool)  =  [ceiling / (2 · pool without sync)] · [pool without sync / pool]
 *
 * the first factor the halved batch (each worker pays a step's fixed cost) and the core the other process
 * takes, the second the synchronized batch-norm reductions.
 *
 *   npx tsx scripts/bench-overheads.ts [--model densenet121] [--image-size 112] [--batch 16] [--mode layer]
 *                                      [--rounds 5] [--backend wasm]
 */
import type { BackendName } from '../src/backend/index.js';
import type { BenchConfig } from '../src/bench/benchmark.js';
import { REWARM_STEPS } from '../src/bench/rounds.js';
import { openBenchStepper, type Stepper } from '../src/bench/stepper.js';
import type { BenchMode } from '../src/bench/config.js';
import type { DenseNetVariant } from '../src/layers/config.js';
import { median } from '../src/util/stats.js';

const args = process.argv.slice(2);
const arg = (name: string, fallback: string) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? args[i + 1]! : fallback;
};
const model = arg('model', 'densenet121') as DenseNetVariant;
const imageSize = Number(arg('image-size', '112'));
const batch = Number(arg('batch', '16'));
const mode = arg('mode', 'layer') as BenchMode;
const rounds = Number(arg('rounds', '5'));
const backend = arg('backend', 'wasm') as BackendName;

const config = (b: number, workers: number, syncBatchNorm = true): BenchConfig => ({ model, mode, batch: b, imageSize, numClasses: 4, steps: 1, workers, ...(syncBatchNorm ? {} : { syncBatchNorm: false }) });
const opened: Stepper[] = [];
const open = async (c: BenchConfig) => {
  const s = await openBenchStepper(c, backend);
  opened.push(s);
  return s;
};
try {
  const [whole, whole2, half, pool, ddp] = [await open(config(batch, 1)), await open(config(batch, 1)), await open(config(batch / 2, 1)), await open(config(batch, 2)), await open(config(batch, 2, false))];
  const items: Array<[string, () => Promise<number>]> = [
    [`batch ${batch}, one process`, () => whole!.step()],
    [`batch ${batch / 2}, one process`, () => half!.step()],
    [`batch ${batch}, two processes at once (mean)`, async () => ((await Promise.all([whole!.step(), whole2!.step()])).reduce((a, b) => a + b) / 2)],
    ['2 workers, synchronized BN', () => pool!.step()],
    ['2 workers, no synchronized BN', () => ddp!.step()],
  ];
  const times = new Map<string, number[]>(items.map(([label]) => [label, []]));
  // As bench --repeat (rounds.ts): an untimed settling round, and untimed steps at the start of each turn, so no
  // process is timed coming back from idling while the others stepped.
  for (const [, step] of items) for (let k = 0; k < REWARM_STEPS; k++) await step();
  for (let r = 0; r < rounds; r++) {
    for (const [label, step] of r % 2 === 0 ? items : [...items].reverse()) {
      for (let k = 0; k < REWARM_STEPS; k++) await step();
      times.get(label)!.push(await step());
    }
  }
  const med = (label: string) => median(times.get(label)!);
  process.stdout.write(`${model} ${imageSize}² batch ${batch} ${mode} on ${backend}: ${rounds} alternated rounds (min / median ms)\n`);
  for (const [label, t] of times) process.stdout.write(`${label.padEnd(42)} ${Math.min(...t).toFixed(0).padStart(6)} / ${median(t).toFixed(0).padStart(6)}\n`);
  const ceiling = med(items[2]![0]);
  const synced = med(items[3]![0]);
  const unsynced = med(items[4]![0]);
  process.stdout.write(
    `half batch / whole: ${(med(items[1]![0]) / med(items[0]![0])).toFixed(2)}; parallel efficiency ${(ceiling / (2 * synced)).toFixed(2)} = ` +
      `${(ceiling / (2 * unsynced)).toFixed(2)} (halved batch, shared cores) × ${(unsynced / synced).toFixed(2)} (synchronized batch norm)\n`,
  );
} finally {
  await Promise.all(opened.map((s) => s.close()));
}
