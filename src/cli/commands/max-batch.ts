/** `efficient-densenet max-batch`: the largest batch whose training step fits a memory budget. */
import { BACKEND_NAMES, initBackend, type BackendName } from '../../backend/index.js';
import { runBenchConfigSafely, type BenchConfig } from '../../bench/benchmark.js';
import { MODE_GROUPS, modeGroupsHelp } from '../../bench/config.js';
import { LEANEST_MODE } from '../../layers/memory-modes.js';
import { backendTraits, WEBGPU_PEAK_FACTOR } from '../../backend/traits.js';
import { findMaxBatch } from '../../bench/max-batch.js';
import { BUILDERS } from '../../layers/densenet.js';
import { planMemory } from '../../memory/plan.js';
import { MIN_IMAGE_SIZE, VARIANT_NAMES, type DenseNetVariant } from '../../layers/config.js';
import { checkWorkersBackend } from '../../parallel/workers.js';
import { UsageError } from '../../util/errors.js';
import { formatSize } from '../../util/format.js';
import { choice, integer, memoryModeValue, parseBytes, parseCommandArgs } from '../args.js';
import { formatBytes, table } from '../format.js';
import { createProgress } from '../progress.js';
import type { CommandIO } from '../command-io.js';

export const MAX_BATCH_HELP = `Usage: efficient-densenet max-batch --budget SIZE [options]
The largest batch whose whole training step (weights, optimizer state, batch and the step's peak) fits.
  --budget SIZE       e.g. 4GiB, 16GiB, 80GiB, 512MiB, 16GB (required)
  --model NAME        ${VARIANT_NAMES.join(' | ')} (default densenet201)
  --image-size S      square input size ≥ ${MIN_IMAGE_SIZE} (default 224)
  --memory-mode M     ${modeGroupsHelp()} | auto (default all; alias: --mode).
                      auto: a memory mode per dense block (planMemory); its largest batch is that of every
                      block in ${LEANEST_MODE} mode, the leanest plan, and the plan shown is the fastest that fits there
  --backend B         ${BACKEND_NAMES.join(' | ')} (default meta: exact engine bytes; others run real steps)
                      (on webgpu: the peak of its GPU buffers, backendPeakBytes; auto plans the step
                      × ${WEBGPU_PEAK_FACTOR}, their bound)
  --classes N         classifier width (default 4)
  --workers N         data-parallel workers sharing the budget: each holds a replica and its shard, the main
                      thread the model of record; the batch found is the whole batch, a multiple of N (default 1).
                      On a computing backend no more than the cores, and each probe's workers must fit free memory
  --allow-oversubscribe
                      run more workers than the machine has cores
  --max N             upper limit of the search (default 65536)
  --json              print JSON on stdout`;

export const MAX_BATCH_OPTIONS = {
  budget: { type: 'string' },
  model: { type: 'string' },
  'image-size': { type: 'string' },
  'memory-mode': { type: 'string' },
  mode: { type: 'string' },
  backend: { type: 'string' },
  classes: { type: 'string' },
  workers: { type: 'string' },
  'allow-oversubscribe': { type: 'boolean' },
  max: { type: 'string' },
  json: { type: 'boolean' },
  verbose: { type: 'boolean' },
  help: { type: 'boolean' },
} as const;

export async function maxBatchCommand(argv: string[], io: CommandIO): Promise<void> {
  const { values } = parseCommandArgs(argv, MAX_BATCH_OPTIONS);
  if (values.help) return io.stdout(MAX_BATCH_HELP);
  const budgetBytes = parseBytes(values.budget, 'budget');
  const model = choice(values.model, 'model', VARIANT_NAMES, 'densenet201') as DenseNetVariant;
  const imageSize = integer(values['image-size'], 'image-size', { min: MIN_IMAGE_SIZE, fallback: 224 });
  const modeGroup = memoryModeValue(values, [...Object.keys(MODE_GROUPS), 'auto'], 'all');
  const modes = modeGroup === 'auto' ? [LEANEST_MODE] : MODE_GROUPS[modeGroup]!;
  const backendName = choice(values.backend, 'backend', BACKEND_NAMES, 'meta') as BackendName;
  const numClasses = integer(values.classes, 'classes', { fallback: 4 });
  const maxBatch = integer(values.max, 'max', { fallback: 1 << 16 });
  const workers = integer(values.workers, 'workers', { fallback: 1 });
  if (workers > 1 && modeGroup === 'auto') throw new UsageError('--memory-mode auto plans one process; with --workers, give the modes to compare');
  const backend = await initBackend(backendName, { logger: io.logger });
  checkWorkersBackend(workers, backend, { allowOversubscribe: values['allow-oversubscribe'] ?? false });
  const isolate = backendTraits(backend).computes;
  const countsBackend = backendTraits(backend).backendPeakFactor !== null;
  const progress = createProgress(!values.json);
  const results: Array<{ mode: string; maxBatch: number; peakBytes: number | null; probes: unknown[]; plan?: string[] }> = [];
  try {
    for (const mode of modes) {
      let probes = 0;
      progress.start(1, `${mode}: searching`);
      // With workers the search runs over the shard (the batch is `workers` shards) and the budget is the whole
      // machine's: every worker's replica and shard, and the main thread's model of record.
      const measure = async (shard: number) => {
        const batch = shard * workers;
        const config: BenchConfig = { model, mode, batch, imageSize, numClasses, steps: 1, workers };
        progress.update(0, `${mode}: batch ${batch} (probe ${++probes})`);
        const result = await runBenchConfigSafely(config, backend, isolate);
        if (workers > 1) return { ...result, peakBytes: result.totalPeakBytes };
        // Where the backend holds more than its tensors (webgpu's GPU buffer pool), the budget bounds what it holds.
        return countsBackend && result.backendPeakBytes !== null ? { ...result, peakBytes: result.backendPeakBytes } : result;
      };
      const shards = await findMaxBatch({ budgetBytes, measure, maxBatch: Math.max(1, Math.floor(maxBatch / workers)) });
      const found = { ...shards, batch: shards.batch * workers, probes: shards.probes.map((p) => ({ ...p, batch: p.batch * workers })) };
      progress.stop();
      if (modeGroup !== 'auto' || found.batch === 0) {
        results.push({ mode: modeGroup === 'auto' ? 'auto' : mode, maxBatch: found.batch, peakBytes: found.peakBytes, probes: found.probes });
        continue;
      }
      // No plan is leaner than every block in the leanest mode, so that batch is the largest any plan fits; the
      // plan shown is the fastest that fits there (often the same).
      progress.start(1, `auto: planning batch ${found.batch}`);
      const planned = BUILDERS[model]({ numClasses, inputShape: [imageSize, imageSize, 3], memoryMode: LEANEST_MODE });
      try {
        const plan = await planMemory({ model: planned, batchSize: found.batch, imageSize, budget: budgetBytes, apply: false });
        results.push({ mode: `auto (${plan.modes.join('/')})`, maxBatch: found.batch, peakBytes: plan.wholeStepBytes, probes: found.probes, plan: plan.modes });
      } finally {
        planned.dispose();
        progress.stop();
      }
    }
  } finally {
    progress.stop();
  }
  if (values.json) {
    io.stdout(JSON.stringify({ model, imageSize, backend, budgetBytes, numClasses, workers, results }, null, 2));
    return;
  }
  io.stdout(
    [
      `${model}, ${imageSize}×${imageSize}, budget ${formatSize(budgetBytes)} for the whole step (backend ${backend}${workers > 1 ? `, ${workers} workers sharing it; batch = the whole batch` : ''}):`,
      '',
      table(['mode', 'max batch', 'peak at that batch', 'probes'], results.map((r) => [r.mode, String(r.maxBatch), formatBytes(r.peakBytes), String(r.probes.length)])),
    ].join('\n'),
  );
}
