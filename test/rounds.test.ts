/**
 * The alternating-rounds measurement (bench --repeat --ceiling) on made-up workers whose cost is known, so
 * the ceiling, the speedups and the parallel efficiency can be checked exactly, and the order of the runs.
 */
import { describe, expect, it } from 'vitest';
import type { BenchConfig, BenchResult } from '../src/bench/benchmark.js';
import { runRounds } from '../src/bench/rounds.js';

const config = (workers: number): BenchConfig => ({ model: 'densenet121', mode: 'layer', batch: 16, imageSize: 112, numClasses: 4, steps: 1, workers });
const result = (c: BenchConfig, msPerStep: number): BenchResult => ({
  mode: c.mode, batch: c.batch, workers: c.workers ?? 1, totalPeakBytes: null, stepPeakBytes: null, baselineBytes: null, peakBytes: null,
  engineStepPeakBytes: null, msPerStep, imagesPerSecond: null, effectiveGflops: null, backendPeakBytes: null,
});

/**
 * A machine that runs one worker's step in `alone` ms, and `together` ms each when two single-worker processes
 * share it, a 2-worker step in `twoWorkers` ms — every figure scaled by the round's drift.
 */
function fakeMachine(drift: number[], costs = { alone: 1000, together: 1100, twoWorkers: 600 }) {
  const log: string[] = [];
  let round = 0;
  let running = 0;
  const run = async (c: BenchConfig) => {
    running++;
    const pause = () => new Promise((resolve) => setTimeout(resolve, 5));
    await pause(); // every run started at once is running now
    const concurrent = running;
    await pause(); // …and has read the count before any finishes
    running--;
    const scale = drift[round]!;
    if ((c.workers ?? 1) === 2) return (log.push('2w'), result(c, costs.twoWorkers * scale));
    log.push(concurrent > 1 ? 'ceiling' : '1w');
    return result(c, (concurrent > 1 ? costs.together : costs.alone) * scale);
  };
  /** Follows the rounds through runRounds' progress labels ("round 2: …"). */
  const onItem = (label: string) => void (round = Number(/^round (\d+)/.exec(label)![1]) - 1);
  return { log, run, onItem };
}

describe('bench rounds: measurement that survives a drifting machine', () => {
  it('speedup, the ceiling and parallel efficiency are taken within each round; min and median over rounds', async () => {
    const machine = fakeMachine([1, 1.3, 0.8]);
    const report = await runRounds({
      configs: [config(1), config(2)],
      repeat: 3,
      ceiling: true,
      run: machine.run,
      pytorch: async () => 500,
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
      run: machine.run,
      onItem: (label) => {
        machine.onItem(label);
        order.push(label.replace(/^round \d+: /, ''));
      },
    });
    expect(order).toEqual([
      '1 worker(s)', '2 worker(s)', '2 single-worker processes at once',
      '2 single-worker processes at once', '2 worker(s)', '1 worker(s)',
    ]);
    expect(machine.log.filter((l) => l === 'ceiling')).toHaveLength(4);
  });

  it('a ceiling needs one worker to compare with', async () => {
    await expect(runRounds({ configs: [config(2)], repeat: 1, ceiling: true, run: async (c) => result(c, 1) })).rejects.toThrow(/include 1 in the worker counts/);
  });
});
