/**
 * `bench --repeat R [--ceiling]`: the alternating rounds of src/bench/rounds.ts for each (mode, batch), every
 * configuration loaded once in a process of its own and stepped in turn, and their report (JSON or text).
 */
import type { BackendName } from '../../backend/index.js';
import { syncOption, type BenchConfig } from '../../bench/benchmark.js';
import type { BenchMode } from '../../bench/config.js';
import { openPyTorchStepper, pytorchModeFor } from '../../bench/pytorch.js';
import { openBenchStepper } from '../../bench/stepper.js';
import { runRounds, type RoundsReport, type Spread } from '../../bench/rounds.js';
import type { DenseNetVariant } from '../../layers/config.js';
import { BASELINE_MODE } from '../../layers/memory-modes.js';
import { describeOptimizer, MEASURING_OPTIMIZER } from '../../step/step.js';
import type { CommandIO } from '../command-io.js';
import { table } from '../format.js';

export interface RoundsCommand {
  model: DenseNetVariant;
  imageSize: number;
  batches: number[];
  modes: BenchMode[];
  workers: number[];
  backend: BackendName;
  steps: number;
  numClasses: number;
  repeat: number;
  ceiling: boolean;
  /** Debian's python with torch, when comparing. */
  python: string | null;
  json: boolean;
  /** false: workers without synchronized batch norm (DDP's default). */
  syncBatchNorm: boolean;
}

export async function benchRounds(options: RoundsCommand, io: CommandIO): Promise<void> {
  const groups: Array<{ mode: BenchMode; batch: number; report: RoundsReport }> = [];
  for (const mode of options.modes) {
    for (const batch of options.batches) {
      const configs: BenchConfig[] = options.workers.map((workers) => ({
        model: options.model, mode, batch, imageSize: options.imageSize, numClasses: options.numClasses, steps: options.steps, workers, ...syncOption(options.syncBatchNorm),
      }));
      const python = options.python;
      // PyTorch's naive mode: its fastest, the figure the fastest tfjs configuration is held to.
      const pytorch = python
        ? () => openPyTorchStepper({ python, model: options.model, imageSize: options.imageSize, batch, mode: pytorchModeFor(BASELINE_MODE), threads: 2, numClasses: options.numClasses })
        : undefined;
      const report = await runRounds({
        configs,
        repeat: options.repeat,
        steps: options.steps,
        ceiling: options.ceiling,
        open: (config) => openBenchStepper(config, options.backend),
        pytorch,
        onItem: (label) => io.logger.info(`${mode} batch ${batch}, ${label}`),
      });
      groups.push({ mode, batch, report });
    }
  }
  const head = { model: options.model, imageSize: options.imageSize, backend: options.backend, optimizer: describeOptimizer(MEASURING_OPTIMIZER), steps: options.steps, repeat: options.repeat, ...syncOption(options.syncBatchNorm) };
  if (options.json) {
    // The headline figures of the first group at the top, for scripts: its largest worker count.
    const first = groups[0]?.report;
    const widest = first?.parallel[first.parallel.length - 1];
    io.stdout(JSON.stringify({ ...head, parallelEfficiency: widest?.parallelEfficiency ?? null, fastestTfjsVersusPyTorch: first?.pytorch?.fastestTfjsVersusPyTorch ?? null, groups }, null, 2));
    return;
  }
  const f = (s: Spread | null, digits: number) => (s === null ? '—' : `${s.min.toFixed(digits)} / ${s.median.toFixed(digits)}`);
  const lines = [`${options.model}, ${options.imageSize}², backend ${options.backend}, ${head.optimizer}: ${options.repeat} alternating rounds (min / median)`];
  if (!options.syncBatchNorm) lines.push('workers without synchronized batch norm (PyTorch DDP\'s default, --no-sync-batch-norm): not the function of one process');
  for (const { mode, batch, report } of groups) {
    lines.push('', `${mode}, batch ${batch}:`);
    lines.push(table(['workers', 'ms/step', 'images/s'], report.configs.map((c) => [String(c.workers), f(c.msPerStep, 0), f(c.imagesPerSecond, 2)])));
    for (const p of report.parallel) {
      lines.push(`${p.workers} workers: speedup ${f(p.speedup, 2)}, the machine's ceiling for ${p.workers} processes ${f(p.ceilingSpeedup, 2)}, parallel efficiency ${f(p.parallelEfficiency, 2)}`);
    }
    if (report.pytorch) lines.push(`PyTorch (naive, 2 threads) ${f(report.pytorch.msPerStep, 0)} ms/step; fastest tfjs / PyTorch ${f(report.pytorch.fastestTfjsVersusPyTorch, 2)}`);
    lines.push(...report.errors.map((error) => `failed: ${error}`));
  }
  io.stdout(lines.join('\n'));
}
