/**
 * The alternating-rounds measurement (bench --repeat --ceiling) on made-up workers whose cost is known, so
 * the ceiling, the speedups and the parallel efficiency can be checked exactly, and the order of the runs.
 */
import { describe, expect, it } from 'vitest';
import type { BenchConfig } from '../src/bench/benchmark.js';
import { runRounds } from '../src/bench/rounds.js';
import type { Stepper } from '../src/bench/stepper.js';

const config = (workers: number): BenchConfig => ({ model: 'densenet121', mode: 'layer', batch: 16, imageSize: 112, numClasses: 4, steps: 1, workers });
/**
 * A machine that runs one worker's step in `alone` ms, and `together` ms each when two single-worker processes
 * step at once, a 2-worker step in `twoWorkers` ms — every figure scaled by the round's drift. Its steppers
 * count how many steps are in flight, as the machine's cores would feel them.
 */
function fakeMachine(drift: number[], costs = { alone: 1000, together: 1100, twoWorkers: 600 }) {
  const log: string[] = [];
  let round = 0;
  let running = 0;
  let opened = 0;
  let closed = 0;
  const open = async (c: BenchConfig): Promise<Stepper> => {
    opened++;
    return {
      step: async () => {
        running++;
        const pause = () => new Promise((resolve) => setTimeout(resolve, 5));
        await pause(); // every step started at once is running now
        const concurrent = running;
        await pause(); // …and has read the count before any finishes
        running--;
        const scale = drift[round]!;
        if ((c.workers ?? 1) === 2) return (log.push('2w'), costs.twoWorkers * scale);
        log.push(concurrent > 1 ? 'ceiling' : '1w');
        return (concurrent > 1 ? costs.together : costs.alone) * scale;
      },
      close: async () => void closed++,
    };
  };
  /** Follows the rounds through runRounds' progress labels ("round 2: …"). */
  const onItem = (label: string) => {
    const m = /^round (\d+)/.exec(label);
    if (m) round = Number(m[1]) - 1;
  };
  return { log, open, onItem, processes: () => ({ opened, closed }) };
}

/** A PyTorch stepper that always takes `ms`. */
const torchAt = (ms: number) => async (): Promise<Stepper> => ({ step: async () => ms, close: async () => undefined });

describe('bench rounds: measurement that survives a drifting machine', () => {
  it('speedup, the ceiling and parallel efficiency are taken within each round; min and median over rounds', async () => {
    const machine = fakeMachine([1, 1.3, 0.8]);
    const report = await runRounds({
      configs: [config(1), config(2)],
      repeat: 3,
      ceiling: true,
      open: machine.open,
      pytorch: torchAt(500),
      onItem: machine.onItem,
    });
    expect(report.rounds).toHaveLength(3);
    // speedup 1000/600 = 1.667 in every round despite the drift; the ceiling 2·1000/1100 = 1.818; efficiency 0.917.
    const [p] = report.parallel;
    expect(p!.workers).toBe(2);
    expect(p!.speedup!.median).toBeCloseTo(1000 / 600, 10);
    expect(p!.ceilingSpeedup!.median).toBeCloseTo(2000 / 1100, 10);
    expect(p!.parallelEfficiency!.median).toBeCloseTo(1100 / 1200, 10);
    expect(p!.parallelEfficiency!.min).toBeCloseTo(1100 / 1200, 10);
    // The drift shows in the times themselves, not in the ratios.
    expect(report.configs[0]!.msPerStep).toEqual({ min: 800, median: 1000 });
    // Fastest tfjs (2 workers, 600 ms × drift) against PyTorch (500 ms, undrifted here): 500/780, 500/600, 500/480.
    expect(report.pytorch!.fastestTfjsVersusPyTorch!.min).toBeCloseTo(500 / 780, 10);
    expect(report.pytorch!.fastestTfjsVersusPyTorch!.median).toBeCloseTo(500 / 600, 10);
  });

  it('the order is reversed every other round, and the ceiling runs its processes at once', async () => {
    const order: string[] = [];
    const machine = fakeMachine([1, 1]);
    await runRounds({
      configs: [config(1), config(2)],
      repeat: 2,
      ceiling: true,
      open: machine.open,
      onItem: (label) => {
        machine.onItem(label);
        order.push(label.replace(/^round \d+: /, ''));
      },
    });
    // Loaded once each (the 1-worker process is also the ceiling's first), settled in round 1's order, then
    // stepped round by round.
    expect(order).toEqual([
      'loading 1 worker(s)', 'loading 2 worker(s)', 'loading single-worker process 2',
      'settling: 1 worker(s)', 'settling: 2 worker(s)', 'settling: 2 single-worker processes at once',
      '1 worker(s)', '2 worker(s)', '2 single-worker processes at once',
      '2 single-worker processes at once', '2 worker(s)', '1 worker(s)',
    ]);
    // Two processes at once: one untimed step in the settling round, one untimed and one timed in each round.
    expect(machine.log.filter((l) => l === 'ceiling')).toHaveLength(2 * (1 + 2 * 2));
    expect(machine.processes()).toEqual({ opened: 3, closed: 3 });
  });

  it('a ceiling needs one worker to compare with', async () => {
    await expect(runRounds({ configs: [config(2)], repeat: 1, ceiling: true, open: fakeMachine([1]).open })).rejects.toThrow(/include 1 in the worker counts/);
  });

  it('--steps N: the median of N steps per item and round', async () => {
    let calls = 0;
    const times = [900, 100, 500]; // median 500
    const report = await runRounds({
      configs: [config(1)],
      repeat: 2,
      steps: 3,
      rewarm: 0,
      ceiling: false,
      open: async () => ({ step: async () => times[calls++ % 3]!, close: async () => undefined }),
    });
    expect(calls).toBe(6);
    expect(report.rounds.map((r) => r.msPerStep[0])).toEqual([500, 500]);
  });

  it('a process that idled while the others stepped comes back slow: one untimed step per turn absorbs it', async () => {
    // A made-up machine on which a process's step costs 1.5× when other processes stepped since its last
    // (its memory went cold), for the 2-worker pool only: interleaving alone would make the pool look slower.
    let global = 0;
    const open = async (c: BenchConfig): Promise<Stepper> => {
      let last = -2;
      return {
        step: async () => {
          const cold = last !== global - 1;
          last = global++;
          return (c.workers ?? 1) === 2 ? (cold ? 900 : 600) : 1000;
        },
        close: async () => undefined,
      };
    };
    const run = (rewarm?: number) => runRounds({ configs: [config(1), config(2)], repeat: 3, ceiling: false, open, ...(rewarm === undefined ? {} : { rewarm }) });
    const warm = await run();
    expect(warm.rounds.map((r) => r.msPerStep)).toEqual([[1000, 600], [1000, 600], [1000, 600]]);
    expect(warm.parallel[0]!.speedup).toEqual({ min: 1000 / 600, median: 1000 / 600 });
    // Without it, the pool's timed step is a cold one except where it stepped last and first in a row (round 2,
    // reversed, starts where round 1 ended).
    const cold = await run(0);
    expect(cold.rounds.map((r) => r.msPerStep)).toEqual([[1000, 900], [1000, 600], [1000, 900]]);
  });

  it('a process that fails to load or dies leaves its figures null, says why, and every process is closed', async () => {
    const machine = fakeMachine([1, 1]);
    let closed = 0;
    const report = await runRounds({
      configs: [config(1), config(2)],
      repeat: 2,
      ceiling: true,
      open: async (c) => {
        if ((c.workers ?? 1) === 2) throw new Error('refused: 2 workers need 9 GiB, 3 GiB free');
        const inner = await machine.open(c);
        return { step: inner.step, close: async () => void closed++ };
      },
      pytorch: async () => ({ step: async () => Promise.reject(new Error('crashed: killed by SIGKILL (out of memory?)')), close: async () => void closed++ }),
    });
    expect(report.errors).toEqual(['2 worker(s): refused: 2 workers need 9 GiB, 3 GiB free', 'PyTorch: crashed: killed by SIGKILL (out of memory?)']);
    expect(report.rounds.map((r) => r.msPerStep)).toEqual([[1000, null], [1000, null]]);
    expect(report.parallel[0]!.parallelEfficiency).toBeNull();
    expect(report.pytorch).toBeUndefined();
    expect(closed).toBe(3); // both single-worker processes and PyTorch's
  });
});
