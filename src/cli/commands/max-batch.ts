/** `efficient-densenet max-batch`: the largest batch whose training step fits a memory budget. */
import { BACKEND_NAMES, initBackend, type BackendName } from '../../backend/index.js';
import { runBenchConfigSafely, type BenchConfig } from '../../bench/benchmark.js';
import { MODE_GROUPS, type BenchMode } from '../../bench/config.js';
import { findMaxBatch } from '../../bench/max-batch.js';
import { MIN_IMAGE_SIZE, VARIANT_NAMES, type DenseNetVariant } from '../../layers/config.js';
import { choice, integer, parseBytes, parseCommandArgs } from '../args.js';
import { formatBytes, table } from '../format.js';
import { createProgress } from '../progress.js';
import type { CommandIO } from './bench.js';

export const MAX_BATCH_HELP = `Usage: efficient-densenet max-batch --budget SIZE [options]
The largest batch whose whole training step (weights, optimizer state, batch and the step's peak) fits.
  --budget SIZE       e.g. 4GiB, 16GiB, 80GiB, 512MiB, 16GB (required)
  --model NAME        ${VARIANT_NAMES.join(' | ')} (default densenet201)
  --image-size S      square input size ≥ ${MIN_IMAGE_SIZE} (default 224)
  --mode M            naive | bottleneck | layer | both | all (default all); efficient = layer
  --backend B         ${BACKEND_NAMES.join(' | ')} (default meta: exact engine bytes; others run real steps)
  --classes N         classifier width (default 4)
  --max N             upper limit of the search (default 65536)
  --json              print JSON on stdout`;

export const MAX_BATCH_OPTIONS = {
  budget: { type: 'string' },
  model: { type: 'string' },
  'image-size': { type: 'string' },
  mode: { type: 'string' },
  backend: { type: 'string' },
  classes: { type: 'string' },
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
  const modes = MODE_GROUPS[choice(values.mode, 'mode', Object.keys(MODE_GROUPS), 'all')] as BenchMode[];
  const backendName = choice(values.backend, 'backend', BACKEND_NAMES, 'meta') as BackendName;
  const numClasses = integer(values.classes, 'classes', { fallback: 4 });
  const maxBatch = integer(values.max, 'max', { fallback: 1 << 16 });
  const backend = await initBackend(backendName, { logger: io.logger });
  const isolate = !backend.startsWith('meta');
  const progress = createProgress(!values.json);
  const results = [];
  try {
    for (const mode of modes) {
      let probes = 0;
      progress.start(1, `${mode}: searching`);
      const measure = async (batch: number) => {
        const config: BenchConfig = { model, mode, batch, imageSize, numClasses, steps: 1 };
        progress.update(0, `${mode}: batch ${batch} (probe ${++probes})`);
        return runBenchConfigSafely(config, backend, isolate);
      };
      const found = await findMaxBatch({ budgetBytes, measure, maxBatch });
      results.push({ mode, maxBatch: found.batch, peakBytes: found.peakBytes, probes: found.probes });
      progress.stop();
    }
  } finally {
    progress.stop();
  }
  if (values.json) {
    io.stdout(JSON.stringify({ model, imageSize, backend, budgetBytes, numClasses, results }, null, 2));
    return;
  }
  io.stdout(
    [
      `${model}, ${imageSize}×${imageSize}, budget ${formatBytes(budgetBytes)} for the whole step (backend ${backend}):`,
      '',
      table(['mode', 'max batch', 'peak at that batch', 'probes'], results.map((r) => [r.mode, String(r.maxBatch), formatBytes(r.peakBytes), String(r.probes.length)])),
    ].join('\n'),
  );
}
