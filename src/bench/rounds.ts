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
 *
 * Idle processes come back slow: on the virtual machine these figures come from, memory left untouched for
 * 20–60 s took 10–25× longer to touch again (with no page fault in the guest: the host's doing), and a
 * 2-worker pool's first step after 30 s idle took 1,449 ms against 1,188–1,253 before, after 60 s 1,747 then
 * 1,396 (after 10 s idle, no slower than the steps that followed). Interleaving makes every process wait while
 * the others step — tens of seconds before round 1, while the others load — which a training loop never does.
 * So an untimed settling round (each item's untimed steps, in round 1's order) comes first, and each item
 * takes REWARM_STEPS untimed steps at the start of its turn too, a guard for the shorter idles within rounds.
 */
import { median } from '../util/stats.js';
import type { BenchConfig } from './benchmark.js';
import type { Stepper } from './stepper.js';

/** Untimed steps each item takes at the start of its turn, after idling while the others stepped. */
export const REWARM_STEPS = 1;

export interface RoundsOptions {
  /** The configurations to compare (same mode and batch; worker counts differ). */
  configs: BenchConfig[];
  repeat: number;
  /** Timed steps of each item in each round; the round records their median. Default 1. */
  steps?: number;
  /** Untimed steps of each item at the start of its turn (and in the settling round). Default REWARM_STEPS. */
  rewarm?: number;
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
  const rewarm = options.rewarm ?? REWARM_STEPS;
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
  /**
   * `rewarm` untimed steps, then the median of `steps` timed steps of each stepper, stepped together (null for
   * one that is missing or failed). `timed` 0: the settling round's untimed steps only.
   */
  const time = async (label: string, steppers: Array<Stepper | null>, timed = steps): Promise<Array<number | null>> => {
    const times = steppers.map(() => [] as number[]);
    const failed = steppers.map((stepper) => !stepper);
    for (let s = 0; s < rewarm + timed; s++) {
      await Promise.all(
        steppers.map(async (stepper, i) => {
          if (failed[i]) return;
          try {
            const ms = await stepper!.step();
            if (s >= rewarm) times[i]!.push(ms);
          } catch (error) {
            failed[i] = true;
            errors.push(`${label}: ${error instanceof Error ? error.message : String(error)}`);
          }
        }),
      );
    }
    return times.map((t, i) => (failed[i] || timed === 0 ? null : median(t)));
  };
  try {
    const steppers: Array<Stepper | null> = [];
    for (const config of configs) steppers.push(await load(`${config.workers ?? 1} worker(s)`, () => options.open(config)));
    // The ceiling's processes: the 1-worker row's, and as many more as the widest N needs.
    const singles: Array<Stepper | null> = options.ceiling ? [steppers[configs.indexOf(single!)] ?? null] : [];
    for (let i = 1; options.ceiling && i < Math.max(...counts, 1); i++) singles.push(await load(`single-worker process ${i + 1}`, () => options.open(single!)));
    const torch = options.pytorch ? await load('PyTorch', options.pytorch) : null;
    type Item = { label: string; steppers: Array<Stepper | null>; record: (record: RoundRecord, ms: Array<number | null>) => void };
    const items: Item[] = configs.map((config, i) => ({
      label: `${config.workers ?? 1} worker(s)`,
      steppers: [steppers[i] ?? null],
      record: (record, [ms]) => void (record.msPerStep[i] = ms ?? null),
    }));
    if (options.ceiling) {
      for (const processes of counts) {
        items.push({
          label: `${processes} single-worker processes at once`,
          steppers: singles.slice(0, processes),
          record: (record, msPerStep) => void record.ceiling.push({ processes, msPerStep }),
        });
      }
    }
    if (torch) {
      items.push({
        label: 'PyTorch',
        steppers: [torch],
        record: (record, [ms]) => {
          if (ms !== null && ms !== undefined) record.pytorchMs = ms;
        },
      });
    }
    if (rewarm > 0) {
      for (const item of items) {
        options.onItem?.(`settling: ${item.label}`);
        await time(item.label, item.steppers, 0);
      }
    }
    const rounds: RoundRecord[] = [];
    for (let round = 1; round <= options.repeat; round++) {
      const record: RoundRecord = { round, msPerStep: configs.map(() => null), ceiling: [] };
      // Reversed every other round: no item always follows the same neighbour.
      for (const item of round % 2 === 1 ? items : [...items].reverse()) {
        options.onItem?.(`round ${round}: ${item.label}`);
        item.record(record, await time(item.label, item.steppers));
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
