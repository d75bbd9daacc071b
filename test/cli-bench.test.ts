import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { availableParallelism, tmpdir } from 'node:os';
import * as path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MEMORY_MODES } from '../src/layers/memory-modes.js';
import { pytorchModeFor } from '../src/bench/pytorch.js';

const run = promisify(execFile);
const CLI = path.resolve('src/cli/main.ts');
const CORES = availableParallelism();

async function cli(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await run(process.execPath, ['--import', 'tsx', CLI, ...args], { timeout: 600_000, maxBuffer: 1 << 24 });
    return { code: 0, stdout, stderr };
  } catch (error) {
    const e = error as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'cli-bench-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('efficient-densenet bench / max-batch: usage errors', () => {
  it.each([
    [['bench', '--model', 'resnet50'], /--model must be one of densenet121, densenet161, densenet169, densenet201; got 'resnet50'/],
    [['bench', '--batch', '0'], /--batch must be an integer ≥ 1/],
    [['bench', '--batch', '16,x'], /--batch must be an integer ≥ 1 or a comma-separated list/],
    [['bench', '--image-size', '31'], /--image-size must be an integer ≥ 32/],
    [['bench', '--mode', 'fast'], /--mode must be one of naive, bottleneck, layer, block, efficient, both, all/],
    [['bench', '--memory-mode', 'fast'], /--memory-mode must be one of naive, bottleneck, layer, block, efficient, both, all/],
    [['bench', '--mode', 'layer', '--memory-mode', 'block'], /--mode is an alias of --memory-mode; give one of them/],
    [['bench', '--backend', 'gpu'], /--backend must be one of/],
    [['bench', '--frobnicate'], /Unknown option '--frobnicate'/],
    [['bench', '--workers', '0'], /--workers must be an integer ≥ 1/],
    [['bench', '--no-sync-batch-norm'], /--no-sync-batch-norm applies to data-parallel workers: give --workers N with N ≥ 2 too/],
    [['max-batch', '--budget', '4GiB', '--workers', '2', '--mode', 'auto'], /--memory-mode auto plans one process; with --workers, give the modes to compare/],
    [['max-batch', '--budget', '4 gigs'], /--budget: '4 gigs' is not a size; use a positive number with a unit, e.g. 4GiB, 512MiB/],
    // Not parseArgs's "argument is ambiguous": the value is the option's, and its own check answers.
    [['max-batch', '--budget', '-5GiB'], /^efficient-densenet: --budget: '-5GiB' is not a size; use a positive number with a unit, e.g. 4GiB, 512MiB/],
    [['max-batch', '--budget=-5GiB'], /--budget: '-5GiB' is not a size/],
    [['max-batch', '--budget', '--json'], /^efficient-densenet: --budget needs a value$/m],
    [['bench', '--batch', '2', '--workers', '1,4'], /workers 4 with batch 2: more workers than images leaves workers without a shard/],
    [['bench', '--backend', 'wasm', '--batch', String(CORES + 1), '--workers', String(CORES + 1)], new RegExp(`${CORES + 1} workers are more than this machine's ${CORES} cores: .*--allow-oversubscribe`)],
    [['max-batch'], /--budget is required/],
    [['nonsense'], /unknown command 'nonsense'/],
  ])('%j → exit 2 with one line on stderr', async (args, message) => {
    const { code, stderr } = await cli(args);
    expect(code).toBe(2);
    expect(stderr).toMatch(message);
    expect(stderr.trim().split('\n')).toHaveLength(1);
  });
});

describe('efficient-densenet bench on meta', () => {
  it('--json gives one document with every mode and batch, and --chart draws them', async () => {
    const chart = path.join(dir, 'memory.svg');
    const budgetSvg = path.join(dir, 'budget.svg');
    const { code, stdout } = await cli(['bench', '--model', 'densenet121', '--image-size', '64', '--batch', '2,4', '--mode', 'both', '--json', '--chart', chart, '--budget-chart', budgetSvg, '--budget', '96MiB']);
    expect(code).toBe(0);
    const report = JSON.parse(stdout) as { model: string; imageSize: number; backend: string; results: Array<Record<string, unknown>> };
    expect(report).toMatchObject({ model: 'densenet121', imageSize: 64, backend: 'meta' });
    expect(report.results.map((r) => `${r.mode}@${r.batch}`)).toEqual(['naive@2', 'naive@4', 'layer@2', 'layer@4']);
    for (const r of report.results) {
      expect(Object.keys(r)).toEqual(expect.arrayContaining(['mode', 'batch', 'stepPeakBytes', 'baselineBytes', 'peakBytes', 'msPerStep', 'backendPeakBytes']));
      expect(r.stepPeakBytes as number).toBeGreaterThan(0);
      expect(r.peakBytes).toBe((r.stepPeakBytes as number) + (r.baselineBytes as number));
      expect(r.backendPeakBytes).toBeNull();
    }
    const naive4 = report.results[1].stepPeakBytes as number;
    const layer4 = report.results[3].stepPeakBytes as number;
    expect(naive4).toBeGreaterThan(layer4);
    const svg = await readFile(chart, 'utf8');
    expect(svg).toContain('<svg');
    expect(svg).toContain('naive');
    expect(svg).toContain('batch size');
    expect(svg).toContain('log scale');
    const budget = await readFile(budgetSvg, 'utf8');
    expect(budget).toContain('budget 96 MiB');
    expect(budget).toContain('whole step');
  });
});

describe('data-parallel workers in the benchmarks', () => {
  it('bench --workers 1,2 on meta: one worker holds a replica and half the batch; the total counts every worker and the model of record', async () => {
    // Batch 16: at a few images the step's peak is the update's (every gradient and the SGD temporaries), not the activations'.
    const { code, stdout } = await cli(['bench', '--model', 'densenet121', '--image-size', '64', '--batch', '16', '--mode', 'layer', '--workers', '1,2', '--json']);
    expect(code).toBe(0);
    const report = JSON.parse(stdout) as { results: Array<{ workers: number; batch: number; peakBytes: number; baselineBytes: number; stepPeakBytes: number; totalPeakBytes: number }> };
    const [one, two] = report.results;
    expect([one!.workers, two!.workers]).toEqual([1, 2]);
    expect(one!.totalPeakBytes).toBe(one!.peakBytes);
    // Half the batch per worker: less activation memory each, but two replicas in all.
    expect(two!.stepPeakBytes).toBeLessThan(one!.stepPeakBytes);
    expect(two!.totalPeakBytes).toBeGreaterThan(2 * two!.peakBytes);
    expect(two!.totalPeakBytes).toBeGreaterThan(one!.totalPeakBytes);
  });

  it('max-batch --workers 2 on meta finds a whole batch of two equal shards that fits with both replicas', async () => {
    const budget = 256 * 2 ** 20;
    const args = ['max-batch', '--budget', '256MiB', '--model', 'densenet121', '--image-size', '64', '--mode', 'layer', '--json'];
    const single = JSON.parse((await cli(args)).stdout) as { results: Array<{ maxBatch: number; peakBytes: number }> };
    const { code, stdout } = await cli([...args, '--workers', '2']);
    expect(code).toBe(0);
    const parallel = JSON.parse(stdout) as { workers: number; results: Array<{ maxBatch: number; peakBytes: number }> };
    expect(parallel.workers).toBe(2);
    const found = parallel.results[0]!;
    expect(found.maxBatch % 2).toBe(0);
    expect(found.maxBatch).toBeGreaterThan(0);
    expect(found.peakBytes).toBeLessThanOrEqual(budget);
    // A second replica costs room: never more images than one process fits.
    expect(found.maxBatch).toBeLessThanOrEqual(single.results[0]!.maxBatch);
  });
});

describe('one name per memory mode', () => {
  it("--mode efficient is accepted as the earlier name of 'layer', and reported as 'layer'", async () => {
    const { code, stdout } = await cli(['bench', '--model', 'densenet121', '--image-size', '64', '--batch', '2', '--mode', 'efficient', '--json']);
    expect(code).toBe(0);
    const report = JSON.parse(stdout) as { optimizer: string; results: Array<{ mode: string }> };
    expect(report.results.map((r) => r.mode)).toEqual(['layer']);
    // Every row runs the library's one training step, and the report says with which optimizer.
    expect(report.optimizer).toBe('SGD (Nesterov momentum 0.9)');
  });

  it('PyTorch rows are named for torchvision: naive against pytorch-naive, every recomputing mode against pytorch-memory-efficient', () => {
    expect(MEMORY_MODES.map((m) => [m, pytorchModeFor(m)])).toEqual([
      ['naive', 'pytorch-naive'],
      ['bottleneck', 'pytorch-memory-efficient'],
      ['layer', 'pytorch-memory-efficient'],
      ['block', 'pytorch-memory-efficient'],
    ]);
  });

  it('help texts list the modes from the table', async () => {
    for (const command of ['bench', 'max-batch', 'train']) {
      const { stdout } = await cli([command, '--help']);
      expect(stdout, command).toMatch(/--memory-mode M +naive \| bottleneck \| layer \| block/);
    }
  });
});

describe('a configuration that runs out of memory is reported, and the others still complete', () => {
  it('wasm: densenet121 at batch 2048 exceeds the 4 GiB heap in its own process', async () => {
    const { code, stdout } = await cli(['bench', '--backend', 'wasm', '--model', 'densenet121', '--image-size', '64', '--batch', '2,2048', '--mode', 'naive', '--json']);
    expect(code).toBe(0);
    const report = JSON.parse(stdout) as { results: Array<{ batch: number; stepPeakBytes: number | null; error?: string }> };
    const [ok, oom] = report.results;
    expect(ok.batch).toBe(2);
    expect(ok.stepPeakBytes).toBeGreaterThan(0);
    expect(ok.error).toBeUndefined();
    expect(oom.batch).toBe(2048);
    expect(oom.stepPeakBytes).toBeNull();
    expect(oom.error).toMatch(/out of memory on the wasm backend \(the wasm heap stops at 4 GiB\) training densenet121 at batch 2048; try a leaner memory mode: 'bottleneck' or 'layer' or 'block'/);
  });
});

describe('bench --repeat: configurations loaded once and stepped in turn', () => {
  it('times every round of a configuration that loads, and names the one that does not (batch 1: 1×1 batch norm)', async () => {
    const { code, stdout } = await cli(['bench', '--backend', 'cpu', '--model', 'densenet121', '--image-size', '32', '--batch', '1,2', '--mode', 'layer', '--repeat', '2', '--json']);
    expect(code).toBe(0);
    type Group = { batch: number; report: { rounds: Array<{ msPerStep: Array<number | null> }>; errors: string[] } };
    const { groups } = JSON.parse(stdout) as { groups: Group[] };
    const [one, two] = groups;
    expect(one!.batch).toBe(1);
    expect(one!.report.rounds.map((r) => r.msPerStep)).toEqual([[null], [null]]);
    expect(one!.report.errors).toEqual([expect.stringMatching(/^1 worker\(s\): BatchNorm '.*' got 1 value per channel in training mode \(batch 1 at 1×1 spatial size\)/)]);
    expect(two!.batch).toBe(2);
    expect(two!.report.errors).toEqual([]);
    for (const round of two!.report.rounds) expect(round.msPerStep[0]).toBeGreaterThan(0);
  }, 300_000);
});
