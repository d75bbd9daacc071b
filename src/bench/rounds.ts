/**
 * Measurement that survives a drifting machine. A machine's speed drifts by up to 30% between runs, so two
 * configurations timed one after the other are not comparable. Here every configuration — and, for each
 * worker count N above 1, the machine's ceiling for N (N independent single-worker processes at once) and
 * optionally PyTorch — is timed once per round, the order reversed every other round, for R rounds; ratios
 * are taken within a round, then summarised by their minimum and median.
 *
 *   speedup(N)          = t(1 worker) / t(N workers)                 same round
 *   ceilingSpeedup(N)   = N · t(1 worker alone) / mean t(each of N single-worker processes at once)
 *   parallelEfficiency  = speedup(N) / ceilingSpeedup(N)
 */
import { median } from '../util/stats.js';
import type { BenchConfig, BenchResult } from './benchmark.js';

export interface RoundsOptions {
  /** The configurations to compare (same mode and batch; worker counts differ), one run each per round. */
  configs: BenchConfig[];
  repeat: number;
  /** Also time N independent single-worker processes at once, for each N > 1 among the configs. */
  ceiling: boolean;
  /** Runs one configuration (in a process of its own) and returns its result. */
  run: (config: BenchConfig) => Promise<BenchResult>;
  /** Times PyTorch's fastest step (ms), once per round, when comparing. */
  pytorch?: () => Promise<number>;
  /** Called before each timed item, for progress. */
  onItem?: (label: string) => void;
}

export interface Spread {
  min: number;
  median: number;
}

export interface RoundRecord {
  round: number;
  /** ms/step of each config, in the configs' order. */
  msPerStep: Array<number | null>;
  /** For each N: the ms/step of each of the N processes run at once. */
  ceiling: Array<{ processes: number; msPerStep: Array<number | null> }>;
  pytorchMs?: number;
}

export interface RoundsReport {
  repeat: number;
  rounds: RoundRecord[];
  /** Per config: min and median ms/step over the rounds. */
  configs: Array<{ mode: string; batch: number; workers: number; msPerStep: Spread | null; imagesPerSecond: Spread | null }>;
  /** Per worker count above 1, against one worker. */
  parallel: Array<{ workers: number; speedup: Spread | null; ceilingSpeedup: Spread | null; parallelEfficiency: Spread | null }>;
  pytorch?: { msPerStep: Spread; fastestTfjsVersusPyTorch: Spread | null };
}

function spread(values: Array<number | null>): Spread | null {
  const known = values.filter((v): v is number => v !== null && Number.isFinite(v));
  return known.length === 0 ? null : { min: Math.min(...known), median: median(known) };
}

function mean(values: Array<number | null>): number | null {
  const known = values.filter((v): v is number => v !== null);
  return known.length === values.length && known.length > 0 ? known.reduce((a, b) => a + b, 0) / known.length : null;
}

export async function runRounds(options: RoundsOptions): Promise<RoundsReport> {
  const { configs } = options;
  const single = configs.find((c) => (c.workers ?? 1) === 1);
  const counts = [...new Set(configs.map((c) => c.workers ?? 1).filter((n) => n > 1))];
  if (options.ceiling && !single) throw new Error('the ceiling is measured against one worker: include 1 in the worker counts');
  type Item = { label: string; time: () => Promise<void> };
  const rounds: RoundRecord[] = [];
  for (let round = 1; round <= options.repeat; round++) {
    const record: RoundRecord = { round, msPerStep: configs.map(() => null), ceiling: [] };
    const items: Item[] = configs.map((config, i) => ({
      label: `round ${round}: ${config.workers ?? 1} worker(s)`,
      time: async () => void (record.msPerStep[i] = (await options.run(config)).msPerStep),
    }));
    if (options.ceiling) {
      for (const processes of counts) {
        items.push({
          label: `round ${round}: ${processes} single-worker processes at once`,
          time: async () => {
            const results = await Promise.all(Array.from({ length: processes }, () => options.run(single!)));
            record.ceiling.push({ processes, msPerStep: results.map((r) => r.msPerStep) });
          },
        });
      }
    }
    if (options.pytorch) items.push({ label: `round ${round}: PyTorch`, time: async () => void (record.pytorchMs = await options.pytorch!()) });
    // Reversed every other round: no item always follows the same neighbour.
    for (const item of round % 2 === 1 ? items : [...items].reverse()) {
      options.onItem?.(item.label);
      await item.time();
    }
    rounds.push(record);
  }
  return summarise(configs, rounds, options.repeat);
}

/** The report from the rounds' raw timings (exported for tests with made-up timings). */
export function summarise(configs: BenchConfig[], rounds: RoundRecord[], repeat: number): RoundsReport {
  const singleIndex = configs.findIndex((c) => (c.workers ?? 1) === 1);
  const report: RoundsReport = {
    repeat,
    rounds,
    configs: configs.map((c, i) => {
      const ms = rounds.map((r) => r.msPerStep[i] ?? null);
      return {
        mode: c.mode,
        batch: c.batch,
        workers: c.workers ?? 1,
        msPerStep: spread(ms),
        imagesPerSecond: spread(ms.map((t) => (t === null ? null : (c.batch * 1000) / t))),
      };
    }),
    parallel: [],
  };
  configs.forEach((c, i) => {
    const n = c.workers ?? 1;
    if (n === 1 || singleIndex < 0) return;
    const speedups = rounds.map((r) => ratio(r.msPerStep[singleIndex], r.msPerStep[i]));
    const ceilings = rounds.map((r) => {
      const together = mean(r.ceiling.find((x) => x.processes === n)?.msPerStep ?? []);
      const alone = r.msPerStep[singleIndex];
      return together === null || alone === null ? null : (n * alone) / together;
    });
    const efficiencies = speedups.map((s, k) => (s === null || ceilings[k] === null ? null : s / ceilings[k]!));
    report.parallel.push({ workers: n, speedup: spread(speedups), ceilingSpeedup: spread(ceilings), parallelEfficiency: spread(efficiencies) });
  });
  const torch = rounds.map((r) => r.pytorchMs ?? null);
  if (torch.some((t) => t !== null)) {
    // Images per second of the fastest tfjs configuration of the round over PyTorch's, round by round.
    const versus = rounds.map((r) => {
      if (r.pytorchMs === undefined) return null;
      const fastest = Math.max(...configs.map((c, i) => (r.msPerStep[i] ? (c.batch * 1000) / r.msPerStep[i]! : 0)));
      return fastest > 0 ? fastest / ((configs[0]!.batch * 1000) / r.pytorchMs) : null;
    });
    report.pytorch = { msPerStep: spread(torch)!, fastestTfjsVersusPyTorch: spread(versus) };
  }
  return report;
}

function ratio(a: number | null | undefined, b: number | null | undefined): number | null {
  return a == null || b == null || b === 0 ? null : a / b;
}
