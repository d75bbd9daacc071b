/**
 * Calibrates the memory planner's cost model (src/memory/cost.ts) on a quiet machine: times one training step
 * per memory mode, each in a process of its own, and prints ms/step, the time relative to 'layer', and the
 * MODE_COST_FACTORS entry they imply (the measured ratio with the recomputed convolutions taken out).
 *
 *   npx tsx scripts/measure-mode-costs.ts [--backend wasm] [--model densenet121] [--image-size 112] [--batch 8] [--steps 3]
 *
 * Timings are only meaningful on an otherwise idle machine.
 */
import { parseArgs } from 'node:util';
import { runBenchmark } from '../src/bench/benchmark.js';
import { BENCH_MODES } from '../src/bench/config.js';
import { BUILDERS } from '../src/layers/densenet.js';
import { type DenseNetVariant, type MemoryMode } from '../src/layers/config.js';
import { LEANEST_MODE } from '../src/layers/memory-modes.js';
import { blockFlops } from '../src/memory/cost.js';
import { blockShapes } from '../src/memory/plan.js';
import type { BackendName } from '../src/backend/index.js';
import { initBackend } from '../src/backend/index.js';

const { values } = parseArgs({
  options: {
    backend: { type: 'string', default: 'wasm' },
    model: { type: 'string', default: 'densenet121' },
    'image-size': { type: 'string', default: '112' },
    batch: { type: 'string', default: '8' },
    steps: { type: 'string', default: '3' },
  },
});
const model = values.model as DenseNetVariant;
const imageSize = Number(values['image-size']);
const batch = Number(values.batch);
const modes: readonly MemoryMode[] = BENCH_MODES;

// Recomputed FLOPs per mode over the whole network, from the same shapes the planner uses.
await initBackend('meta');
const shapes = blockShapes(BUILDERS[model]({ numClasses: 4, inputShape: [imageSize, imageSize, 3], memoryMode: LEANEST_MODE }), imageSize);
const share = (mode: MemoryMode) => {
  const totals = shapes.map((s) => blockFlops(s, mode)).reduce((a, f) => ({ training: a.training + f.training, recomputed: a.recomputed + f.recomputed }), { training: 0, recomputed: 0 });
  return totals.recomputed / totals.training;
};

const report = await runBenchmark({ model, batches: [batch], imageSize, modes, backend: values.backend as BackendName, steps: Number(values.steps), isolate: true });
const ms = new Map(report.results.map((r) => [r.mode, r.msPerStep]));
const layer = ms.get('layer');
console.log(`${model} ${imageSize}² batch ${batch} on ${report.backend}, median of ${report.steps} steps after a warm-up, one process per mode:`);
for (const mode of modes) {
  const t = ms.get(mode);
  const error = report.results.find((r) => r.mode === mode)?.error;
  if (t == null || layer == null) {
    console.log(`  ${mode.padEnd(10)} failed: ${error ?? 'no time'}`);
    continue;
  }
  const ratio = t / layer;
  console.log(`  ${mode.padEnd(10)} ${t.toFixed(0).padStart(7)} ms/step  ${ratio.toFixed(3)}× layer  → factor ${(ratio / (1 + share(mode))).toFixed(3)}`);
}
const block = ms.get('block');
if (block != null && layer != null) console.log(`block / layer time: ${(block / layer).toFixed(3)} (issue goal ≤ 1.25)`);
