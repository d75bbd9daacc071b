/**
 * Measurement that survives a drifting machine. A machine's speed drifts by up to 30% within minutes, so two
 * configurations timed one after the other are not comparable. Here every configuration — and, for each
 * worker count N above 1, the machine's ceiling for N (N independent single-worker processes at once) and
 * optionally PyTorch — is loaded once in a process of its own and warmed up (stepper.ts); then, for R rounds,
 * each is stepped in turn, seconds apart, the order reversed every other round. Ratios are taken within a
 * round, then summarised by their minimum and median.
 *
 *   speedup(N)          = t(1 worker) / t(N workers)                 same round
 *   ceilingSpeedup(N)   = N · t(1 worker alone) / mean t(each of N single-worker processes at once)
 *   parallelEfficiency  = speedup(N) / ceilingSpeedup(N)
 *
 * The single-worker process of the 1-worker row is also the ceiling's first process, so every process of the
 * comparison has run as many steps. Every process is loaded at once: their memory adds up.
 */
import { median } from '../util/stats.js';
import type { BenchConfig } from './benchmark.js';
import type { Stepper } from './stepper.js';

export interface RoundsOptions {
  /** The configurations to compare (same mode and batch; worker counts differ). */
  configs: BenchConfig[];
  repeat: number;
  /** Timed steps of each item in each round; the round records their median. Default 1. */
  steps?: number;
  /** Also time N independent single-worker processes at once, for each N > 1 among the configs. */
  ceiling: boolean;
  /** Loads one configuration in a process of its own and warms it up. */
  open: (config: BenchConfig) => Promise<Stepper>;
  /** Loads PyTorch's fastest configuration the same way, when comparing. */
  pytorch?: () => Promise<Stepper>;
  /** Called before each process is loaded and each item is timed, for progress. */
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
  /** What failed (a process that did not load or died), one line each; its figures are null. */
  errors: string[];
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
  const steps = options.steps ?? 1;
  const single = configs.find((c) => (c.workers ?? 1) === 1);
  const counts = [...new Set(configs.map((c) => c.workers ?? 1).filter((n) => n > 1))];
  if (options.ceiling && !single) throw new Error('the ceiling is measured against one worker: include 1 in the worker counts');
  const errors: string[] = [];
  const opened: Stepper[] = [];
  const load = async (label: string, open: () => Promise<Stepper>): Promise<Stepper | null> => {
    options.onItem?.(`loading ${label}`);
    try {
      const stepper = await open();
      opened.push(stepper);
      return stepper;
    } catch (error) {
      errors.push(`${label}: ${error instanceof Error ? error.message : String(error)}`);
      return null;
    }
  };
  /** The median of `steps` steps of each stepper, stepped together (null for one that is missing or failed). */
  const time = async (label: string, steppers: Array<Stepper | null>): Promise<Array<number | null>> => {
    const times = steppers.map(() => [] as number[]);
    for (let s = 0; s < steps; s++) {
      await Promise.all(
        steppers.map(async (stepper, i) => {
          if (!stepper || times[i]!.length < s) return;
          try {
            times[i]!.push(await stepper.step());
          } catch (error) {
            errors.push(`${label}: ${error instanceof Error ? error.message : String(error)}`);
          }
        }),
      );
    }
    return times.map((t) => (t.length === steps ? median(t) : null));
  };
  try {
    const steppers: Array<Stepper | null> = [];
    for (const config of configs) steppers.push(await load(`${config.workers ?? 1} worker(s)`, () => options.open(config)));
    // The ceiling's processes: the 1-worker row's, and as many more as the widest N needs.
    const singles: Array<Stepper | null> = options.ceiling ? [steppers[configs.indexOf(single!)] ?? null] : [];
    for (let i = 1; options.ceiling && i < Math.max(...counts, 1); i++) singles.push(await load(`single-worker process ${i + 1}`, () => options.open(single!)));
    const torch = options.pytorch ? await load('PyTorch', options.pytorch) : null;
    type Item = { label: string; time: (record: RoundRecord) => Promise<void> };
    const items: Item[] = configs.map((config, i) => {
      const label = `${config.workers ?? 1} worker(s)`;
      return { label, time: async (record) => void ([record.msPerStep[i]] = await time(label, [steppers[i] ?? null])) };
    });
    if (options.ceiling) {
      for (const processes of counts) {
        const label = `${processes} single-worker processes at once`;
        items.push({ label, time: async (record) => void record.ceiling.push({ processes, msPerStep: await time(label, singles.slice(0, processes)) }) });
      }
    }
    if (torch) {
      items.push({
        label: 'PyTorch',
        time: async (record) => {
          const [ms] = await time('PyTorch', [torch]);
          if (ms !== null && ms !== undefined) record.pytorchMs = ms;
        },
      });
    }
    const rounds: RoundRecord[] = [];
    for (let round = 1; round <= options.repeat; round++) {
      const record: RoundRecord = { round, msPerStep: configs.map(() => null), ceiling: [] };
      // Reversed every other round: no item always follows the same neighbour.
      for (const item of round % 2 === 1 ? items : [...items].reverse()) {
        options.onItem?.(`round ${round}: ${item.label}`);
        await item.time(record);
      }
      rounds.push(record);
    }
    return { ...summarise(configs, rounds, options.repeat), errors: [...new Set(errors)] };
  } finally {
    await Promise.all(opened.map((s) => s.close()));
  }
}

/** The report from the rounds' raw timings (exported for tests with made-up timings). */
export function summarise(configs: BenchConfig[], rounds: RoundRecord[], repeat: number): Omit<RoundsReport, 'errors'> {
  const singleIndex = configs.findIndex((c) => (c.workers ?? 1) === 1);
  const report: Omit<RoundsReport, 'errors'> = {
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
