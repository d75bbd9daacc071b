/** `efficient-densenet bench`: memory (and speed) of one DenseNet training step per mode and batch. */
import { BACKEND_NAMES, type BackendName } from '../../backend/index.js';
import { runBenchmark, type BenchReport } from '../../bench/benchmark.js';
import { renderLineChartSvg } from '../../charts/line-chart.js';
import { MODE_GROUPS, modeGroupsHelp, type BenchMode } from '../../bench/config.js';
import { BASELINE_MODE, DEFAULT_RECOMPUTING_MODE } from '../../layers/memory-modes.js';
import { findPyTorch, pytorchModeFor, timePyTorch, type PyTorchTiming } from '../../bench/pytorch.js';
import { VARIANT_NAMES, type DenseNetVariant } from '../../layers/config.js';
import { MIN_IMAGE_SIZE } from '../../layers/config.js';
import { writeFileAtomic } from '../../util/atomic.js';
import { UsageError } from '../../util/errors.js';
import type { CommandIO } from '../command-io.js';
import { formatSize, MIB } from '../../util/format.js';
import { choice, integer, integerList, memoryModeValue, optional, parseBytes, parseCommandArgs } from '../args.js';
import { backendTraits } from '../../backend/traits.js';
import { checkWorkersBackend } from '../../parallel/workers.js';
import { formatMiB, formatNumber, table } from '../format.js';
import { createProgress } from '../progress.js';

export const BENCH_HELP = `Usage: efficient-densenet bench [options]
Memory and time of one training step (SGD with Nesterov momentum, random data) per memory mode and batch size.
  --model NAME        densenet121 | densenet161 | densenet169 | densenet201 (default densenet201)
  --batch N[,N…]      batch sizes (default 16,32,64)
  --image-size S      square input size ≥ ${MIN_IMAGE_SIZE} (default 224)
  --memory-mode M     ${modeGroupsHelp()} (default all; alias: --mode)
  --backend B         ${BACKEND_NAMES.join(' | ')} (default meta: exact memory, no compute)
  --steps N           timed steps after two warm-up steps; the median is reported (default 1). With
                      --repeat: timed steps of each configuration per round (their median)
  --repeat R          load every configuration once, in a process of its own, warm it up (five steps), then
                      step them in turn for R rounds, seconds apart, the order reversed every other round,
                      each turn starting with one untimed step (a process that idled comes back slow), after
                      an untimed settling round; report min and median: the machine's speed drifts within
                      minutes, so only interleaved measurements compare (a computing backend; every process
                      is loaded at once, so their memory adds up)
  --ceiling           with --repeat and --workers 1,N: also step N independent single-worker processes at
                      once each round (the machine's ceiling for N; the 1-worker row's process is the first)
                      and report parallelEfficiency = speedup of N workers / the ceiling's speedup
  --workers N[,N…]    data-parallel workers (wasm, cpu; each a replica and a shard of the batch, batch norm
                      synchronized), e.g. 1,2 to compare (default 1). On meta: one worker's exact memory
                      and the whole machine's (every worker and the main thread's model of record).
                      Elsewhere no more than the cores, nor than the smallest batch
  --allow-oversubscribe
                      run more workers than the machine has cores (they share them: no speed, more memory)
  --no-sync-batch-norm
                      with workers: each normalises with its own shard's batch statistics (PyTorch DDP's
                      default; another function than one process, without batch norm's barriers)
  --classes N         classifier width (default 4)
  --json              print one JSON document on stdout instead of the table
  --chart FILE.svg    also draw the step peak against batch size, a line per mode (log memory axis)
  --budget-chart FILE.svg
                      also draw the whole step (weights, optimizer state, batch and step peak) against
                      batch size, a line per mode, with a dashed line at --budget
  --budget SIZE       the budget line of --budget-chart, e.g. 4GiB, 16GB (default 4GiB)
  --compare-pytorch   time the same steps in PyTorch (python3-torchvision, 2 threads) in the same run,
                      its naive mode always (its fastest) and memory_efficient=True for recomputing modes
  --verbose           stack traces on failure`;

export const BENCH_OPTIONS = {
  model: { type: 'string' },
  batch: { type: 'string' },
  'image-size': { type: 'string' },
  'memory-mode': { type: 'string' },
  mode: { type: 'string' },
  backend: { type: 'string' },
  steps: { type: 'string' },
  repeat: { type: 'string' },
  ceiling: { type: 'boolean' },
  workers: { type: 'string' },
  'allow-oversubscribe': { type: 'boolean' },
  'no-sync-batch-norm': { type: 'boolean' },
  classes: { type: 'string' },
  json: { type: 'boolean' },
  chart: { type: 'string' },
  'budget-chart': { type: 'string' },
  budget: { type: 'string' },
  'compare-pytorch': { type: 'boolean' },
  verbose: { type: 'boolean' },
  help: { type: 'boolean' },
} as const;

interface PyTorchColumn {
  timings: PyTorchTiming[];
}

export async function benchCommand(argv: string[], io: CommandIO): Promise<void> {
  const { values } = parseCommandArgs(argv, BENCH_OPTIONS);
  if (values.help) return io.stdout(BENCH_HELP);
  const model = choice(values.model, 'model', VARIANT_NAMES, 'densenet201') as DenseNetVariant;
  const batches = integerList(values.batch, 'batch', [16, 32, 64]);
  const imageSize = integer(values['image-size'], 'image-size', { min: MIN_IMAGE_SIZE, fallback: 224 });
  const modeGroup = memoryModeValue(values, Object.keys(MODE_GROUPS), 'all');
  const backend = choice(values.backend, 'backend', BACKEND_NAMES, 'meta') as BackendName;
  const steps = integer(values.steps, 'steps', { fallback: 1 });
  const workers = integerList(values.workers, 'workers', [1]);
  const syncBatchNorm = !values['no-sync-batch-norm'];
  if (!syncBatchNorm && !workers.some((w) => w > 1)) throw new UsageError('--no-sync-batch-norm applies to data-parallel workers: give --workers N with N ≥ 2 too');
  const numClasses = integer(values.classes, 'classes', { fallback: 4 });
  for (const option of ['chart', 'budget-chart'] as const) {
    const file = values[option];
    if (file !== undefined && !file.endsWith('.svg')) throw new UsageError(`--${option} must name an .svg file, got '${file}'`);
  }
  if (values.budget !== undefined && values['budget-chart'] === undefined) throw new UsageError('--budget only applies to --budget-chart');
  const budgetBytes = parseBytes(values.budget ?? '4GiB', 'budget');
  const modes = MODE_GROUPS[modeGroup] as BenchMode[];
  const repeat = optional(values.repeat, (v) => integer(v, 'repeat'));
  if (values.ceiling && repeat === undefined) throw new UsageError('--ceiling is measured in rounds: give --repeat R too');
  if (values.ceiling && !(workers.includes(1) && workers.some((w) => w > 1))) throw new UsageError('--ceiling compares N workers with one: give --workers 1,N');
  if (repeat !== undefined && !backendTraits(backend).computes) throw new UsageError(`--repeat times steps: give a computing backend (--backend wasm, cpu, …), not ${backend}`);
  const python = values['compare-pytorch'] ? await findPyTorch() : null;
  if (values['compare-pytorch'] && !python) {
    throw new UsageError('--compare-pytorch needs python3 with torch and torchvision (Debian: apt-get install python3-torchvision)');
  }
  if (repeat !== undefined) {
    const { benchRounds } = await import('./bench-rounds.js');
    checkWorkersBackend(Math.max(...workers), backend, { allowOversubscribe: values['allow-oversubscribe'] ?? false });
    return benchRounds({ model, imageSize, batches, modes, workers, backend, steps, numClasses, repeat, ceiling: values.ceiling ?? false, python, json: values.json ?? false, syncBatchNorm }, io);
  }

  const progress = createProgress(!values.json);
  progress.start(batches.length * modes.length * workers.length, `${model} ${imageSize}²`);
  let report: BenchReport;
  try {
    report = await runBenchmark({
      model,
      batches,
      imageSize,
      modes,
      backend,
      steps,
      numClasses,
      workers,
      allowOversubscribe: values['allow-oversubscribe'] ?? false,
      syncBatchNorm,
      onStart: (config, index) => progress.update(index, `${config.mode} batch ${config.batch}${(config.workers ?? 1) > 1 ? `, ${config.workers} workers` : ''}`),
      onResult: (result, done) => progress.update(done, `${result.mode} batch ${result.batch} done`),
    });
  } finally {
    progress.stop();
  }
  let pytorch: PyTorchColumn | undefined;
  if (python) {
    io.logger.info(`timing the same steps in PyTorch (${python}, 2 threads)…`);
    // PyTorch's naive mode always: it is PyTorch's fastest, the figure to compare the best tfjs mode with.
    const ptModes = [...new Set<BenchMode>([BASELINE_MODE, ...modes])];
    pytorch = { timings: await timePyTorch({ python, model, imageSize, batches, modes: ptModes, steps, threads: 2, numClasses }) };
  }
  if (values.chart) {
    await writeFileAtomic(values.chart, await memoryChart(report));
    io.logger.info(`chart written to ${values.chart}`);
  }
  if (values['budget-chart']) {
    await writeFileAtomic(values['budget-chart'], await budgetChart(report, budgetBytes));
    io.logger.info(`budget chart written to ${values['budget-chart']}`);
  }
  if (values.json) {
    const versus = pytorch ? bestVersusPyTorch(report, pytorch.timings) : null;
    io.stdout(JSON.stringify(pytorch ? { ...report, pytorch: pytorch.timings, bestVersusPyTorch: versus } : report, null, 2));
    return;
  }
  io.stdout(formatReport(report, pytorch));
}

/** The fastest tfjs configuration against PyTorch's fastest, per batch size (images per second). */
export function bestVersusPyTorch(report: BenchReport, timings: PyTorchTiming[]) {
  return [...new Set(report.results.map((r) => r.batch))].flatMap((batch) => {
    const tfjs = report.results.filter((r) => r.batch === batch && r.imagesPerSecond !== null).sort((a, b) => b.imagesPerSecond! - a.imagesPerSecond!)[0];
    const torch = timings.filter((t) => t.batch === batch).sort((a, b) => a.msPerStep - b.msPerStep)[0];
    if (!tfjs || !torch) return [];
    const torchImages = (batch * 1000) / torch.msPerStep;
    return [{
      batch,
      tfjs: { mode: tfjs.mode, workers: tfjs.workers, imagesPerSecond: tfjs.imagesPerSecond! },
      pytorch: { mode: torch.mode, imagesPerSecond: torchImages },
      ratio: tfjs.imagesPerSecond! / torchImages,
    }];
  });
}

/** Images per second of each multi-worker configuration over the same configuration with one worker. */
function workerSpeedups(report: BenchReport): string[] {
  return report.results.flatMap((r) => {
    if (r.workers <= 1 || r.imagesPerSecond === null) return [];
    const one = report.results.find((o) => o.mode === r.mode && o.batch === r.batch && o.workers === 1 && o.imagesPerSecond !== null);
    return one ? [`${r.mode} batch ${r.batch}: ${r.workers} workers train ${(r.imagesPerSecond / one.imagesPerSecond!).toFixed(2)}× the images/s of 1`] : [];
  });
}

function pytorchFor(timings: PyTorchTiming[], mode: BenchMode, batch: number): PyTorchTiming | undefined {
  const ptMode = pytorchModeFor(mode);
  return timings.find((t) => t.mode === ptMode && t.batch === batch);
}

export function formatReport(report: BenchReport, pytorch?: PyTorchColumn): string {
  const timed = report.results.some((r) => r.msPerStep !== null);
  const parallel = report.results.some((r) => r.workers > 1);
  const header = ['mode', 'batch', ...(parallel ? ['workers'] : []), 'step peak MiB', 'tfjs-engine MiB', 'baseline MiB'];
  if (parallel) header.push('total MiB');
  if (timed) header.push('ms/step', 'images/s', 'GFLOP/s', 'backend MiB');
  if (pytorch) header.push('PyTorch ms/step', 'PyTorch/tfjs time');
  header.push('note');
  const rows = report.results.map((r) => {
    const row = [r.mode, String(r.batch), ...(parallel ? [String(r.workers)] : []), formatMiB(r.stepPeakBytes), formatMiB(r.engineStepPeakBytes), formatMiB(r.baselineBytes)];
    if (parallel) row.push(formatMiB(r.totalPeakBytes));
    if (timed) row.push(formatNumber(r.msPerStep, 0), formatNumber(r.imagesPerSecond, 2), formatNumber(r.effectiveGflops, 1), formatMiB(r.backendPeakBytes));
    if (pytorch) {
      const pt = pytorchFor(pytorch.timings, r.mode, r.batch);
      row.push(formatNumber(pt?.msPerStep, 0), pt && r.msPerStep ? formatNumber(pt.msPerStep / r.msPerStep, 2) : '—');
    }
    row.push(r.error ? r.error.split(':')[0] : '');
    return row;
  });
  const failures = report.results.filter((r) => r.error);
  const lines = [
    `${report.model}, ${report.imageSize}×${report.imageSize}, ${report.numClasses} classes, backend ${report.backend}: one training step (${report.optimizer})`,
    '',
    table(header, rows),
    '',
    'step peak: distinct tensor buffers at the step\'s peak above the baseline (weights, optimizer state, batch);',
    'tfjs-engine: tf.profile\'s own count, which adds a buffer again for every view and every clone the tape saves.',
    ...(parallel
      ? ['with workers: step peak and baseline are one worker\'s (a replica and the largest shard); total: every worker and the main thread (on a computing backend: their backends\' memory).']
      : []),
    ...failures.map((r) => `${r.mode} batch ${r.batch}: ${r.error}`),
  ];
  const byBatch = new Map<number, Map<string, number>>();
  for (const r of report.results) {
    if (r.stepPeakBytes === null) continue;
    if (!byBatch.has(r.batch)) byBatch.set(r.batch, new Map());
    byBatch.get(r.batch)!.set(r.mode, r.stepPeakBytes);
  }
  for (const [batch, modes] of byBatch) {
    const stored = modes.get(BASELINE_MODE);
    const recomputed = modes.get(DEFAULT_RECOMPUTING_MODE);
    if (stored && recomputed) lines.push(`batch ${batch}: ${BASELINE_MODE}/${DEFAULT_RECOMPUTING_MODE} step peak = ${(stored / recomputed).toFixed(1)}×`);
  }
  lines.push(...workerSpeedups(report));
  if (report.syncBatchNorm === false) lines.push('rows with workers: batch norm per worker (PyTorch DDP\'s default, --no-sync-batch-norm), not the function of one process');
  if (pytorch) {
    for (const v of bestVersusPyTorch(report, pytorch.timings)) {
      lines.push(
        `batch ${v.batch}: fastest tfjs (${v.tfjs.mode}, ${v.tfjs.workers} worker${v.tfjs.workers > 1 ? 's' : ''}) ${v.tfjs.imagesPerSecond.toFixed(2)} images/s = ` +
          `${v.ratio.toFixed(2)}× PyTorch's fastest (${v.pytorch.mode}) ${v.pytorch.imagesPerSecond.toFixed(2)} images/s`,
      );
    }
  }
  return lines.join('\n');
}

function seriesOf(report: BenchReport, bytes: (r: BenchReport['results'][number]) => number | null) {
  const modes = [...new Set(report.results.map((r) => r.mode))];
  return modes.map((mode) => ({
    name: mode,
    points: report.results
      .filter((r) => r.mode === mode && bytes(r) !== null)
      .map((r) => ({ x: r.batch, y: (bytes(r) as number) / MIB })),
  }));
}

/** Step peak against batch size, a line per mode, on a log memory axis so the lean modes stay visible. */
export async function memoryChart(report: BenchReport): Promise<string> {
  return renderLineChartSvg({
    title: `${report.model} training-step memory, ${report.imageSize}² (${report.backend})`,
    xLabel: 'batch size',
    yLabel: 'step peak (MiB, distinct tensor buffers, log scale)',
    yScale: 'log',
    integerX: true,
    series: seriesOf(report, (r) => r.stepPeakBytes),
  });
}

/** The whole step (baseline + step peak) against batch size, a line per mode, with the budget as a line. */
export async function budgetChart(report: BenchReport, budgetBytes: number): Promise<string> {
  return renderLineChartSvg({
    title: `${report.model} whole training step against a ${formatSize(budgetBytes)} budget, ${report.imageSize}² (${report.backend})`,
    xLabel: 'batch size (log scale)',
    yLabel: 'whole step (MiB: weights, optimizer state, batch, step peak; log scale)',
    // Batches usually grow geometrically (8, 32, 128, …): a log axis spaces them evenly.
    xScale: 'log',
    yScale: 'log',
    integerX: true,
    rules: [{ y: budgetBytes / MIB, label: `budget ${formatSize(budgetBytes)}` }],
    series: seriesOf(report, (r) => r.peakBytes),
  });
}
