/**
 * What lockstep costs on this machine, with no model at all: two worker threads run the same fixed,
 * data-independent work (a loop over a Float32Array) in S segments per "step", and
 *   alone        one thread, the other idle;
 *   independent  both at once, never waiting for each other (two processes' situation: the ceiling);
 *   lockstep     both at once, meeting at our barrier after every segment (SharedGroup.allGather of 65
 *                float64 values, what a synchronized batch norm exchanges) — a data-parallel step's situation.
 * lockstep / independent is the parallelEfficiency this machine allows a step with S synchronizations when the
 * work itself costs nothing to split: whatever makes one core's segment slower than the other's (another
 * thread, the hypervisor, cache or memory traffic) is waited for at every barrier instead of averaging out.
 * The defaults mirror a DenseNet-121 112² b16 `layer` step on 2 workers: 244 synchronizations, ~1.2 s.
 *
 *   npx tsx scripts/bench-lockstep.ts [--segments 244] [--segment-ms 5] [--work cache|memory] [--rounds 5] [--spin 0]
 *
 * cache: 16 K floats per thread (in each core's L1/L2), compute-bound; memory: 4 M floats per thread (16 MB,
 * out of cache), bandwidth-bound. Configurations alternate, the order reversed every other round; min and
 * median per configuration over the rounds' steps.
 */
import { isMainThread, parentPort, Worker, workerData } from 'node:worker_threads';
import { createGroupBuffers, SharedGroup, type GroupBuffers } from '../src/parallel/shared-group.js';
import { median } from '../src/util/stats.js';

interface Trial {
  /** Segments per step. */
  segments: number;
  /** Loop passes per segment (calibrated by the main thread for --segment-ms). */
  passes: number;
  /** Meet the other thread at the barrier after every segment. */
  lockstep: boolean;
}

interface Setup {
  buffers: GroupBuffers;
  rank: number;
  floats: number;
}

if (!isMainThread) {
  const { buffers, rank, floats } = workerData as Setup;
  const group = new SharedGroup(buffers, rank);
  const a = new Float32Array(floats).fill(1);
  const b = new Float32Array(floats).fill(0.5);
  const stats = new Float64Array(65);
  const work = (passes: number): number => {
    let s = 0;
    for (let p = 0; p < passes; p++) {
      for (let i = 0; i < a.length; i++) a[i] = a[i]! * 0.999 + b[i]!;
      s += a[p % a.length]!;
    }
    return s;
  };
  parentPort!.on('message', (trial: Trial | 'calibrate') => {
    if (trial === 'calibrate') {
      work(2000); // tiers the loop up
      const start = performance.now();
      work(1000);
      parentPort!.postMessage((performance.now() - start) / 1000);
      return;
    }
    group.beginStep(2);
    const start = performance.now();
    let sink = 0;
    for (let s = 0; s < trial.segments; s++) {
      sink += work(trial.passes);
      if (trial.lockstep) {
        stats[0] = sink;
        group.allGather(stats);
      }
    }
    parentPort!.postMessage(performance.now() - start);
  });
} else {
  const args = process.argv.slice(2);
  const arg = (name: string, fallback: string) => {
    const i = args.indexOf(`--${name}`);
    return i >= 0 ? args[i + 1]! : fallback;
  };
  const segments = Number(arg('segments', '244'));
  const segmentMs = Number(arg('segment-ms', '5'));
  const workKind = arg('work', 'cache');
  const rounds = Number(arg('rounds', '5'));
  const spin = Number(arg('spin', '0'));
  if (workKind !== 'cache' && workKind !== 'memory') throw new Error(`--work must be cache or memory, got ${workKind}`);
  const floats = workKind === 'cache' ? 16 * 1024 : 4 * 1024 * 1024;

  const buffers = createGroupBuffers(2, 65, 1, 60_000, spin);
  const here = import.meta.url;
  const boot = `import('tsx/esm/api').then((api) => { api.register(); return import(${JSON.stringify(here)}); });`;
  const workers = [0, 1].map((rank) => new Worker(boot, { eval: true, workerData: { buffers, rank, floats } satisfies Setup }));
  const ask = (w: Worker, message: Trial | 'calibrate') =>
    new Promise<number>((resolve, reject) => {
      const done = (ms: number) => {
        w.off('error', fail);
        resolve(ms);
      };
      const fail = (error: Error) => {
        w.off('message', done);
        reject(error);
      };
      w.once('message', done);
      w.once('error', fail);
      w.postMessage(message);
    });
  try {
    // Both threads booted and their loops tiered up first; then one calibrates alone.
    await Promise.all(workers.map((w) => ask(w, 'calibrate')));
    const perPass = await ask(workers[0]!, 'calibrate');
    const passes = Math.max(1, Math.round(segmentMs / perPass));
    const trial = (lockstep: boolean): Trial => ({ segments, passes, lockstep });
    const configs = {
      alone: async () => ask(workers[0]!, trial(false)),
      independent: async () => {
        const ms = await Promise.all(workers.map((w) => ask(w, trial(false))));
        return (ms[0]! + ms[1]!) / 2;
      },
      lockstep: async () => Math.max(...(await Promise.all(workers.map((w) => ask(w, trial(true)))))),
    };
    const names = Object.keys(configs) as (keyof typeof configs)[];
    for (const name of names) await configs[name](); // warm-up
    const times: Record<string, number[]> = Object.fromEntries(names.map((n) => [n, []]));
    const efficiency: number[] = [];
    for (let round = 0; round < rounds; round++) {
      const order = round % 2 ? [...names].reverse() : names;
      const got: Record<string, number> = {};
      for (const name of order) {
        got[name] = await configs[name]();
        times[name]!.push(got[name]!);
      }
      efficiency.push(got.independent! / got.lockstep!);
      process.stderr.write(`round ${round + 1}: ${names.map((n) => `${n} ${got[n]!.toFixed(0)} ms`).join(', ')}, lockstep efficiency ${efficiency.at(-1)!.toFixed(3)}\n`);
    }
    process.stdout.write(`${segments} segments × ${segmentMs} ms of ${workKind}-bound work (${passes} passes over ${floats} floats), ${rounds} alternated rounds, min / median ms per step:\n`);
    for (const n of names) process.stdout.write(`  ${n.padEnd(12)} ${Math.min(...times[n]!).toFixed(0).padStart(6)} / ${median(times[n]!).toFixed(0).padStart(6)}\n`);
    process.stdout.write(`  lockstep efficiency (independent / lockstep, per round): min ${Math.min(...efficiency).toFixed(3)}, median ${median(efficiency).toFixed(3)}\n`);
  } finally {
    await Promise.all(workers.map((w) => w.terminate()));
  }
}
