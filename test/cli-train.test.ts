import { spawn } from 'node:child_process';
import { promises as fs } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { writeSyntheticImageFolder } from '../src/data/synthetic.js';

const ROOT = fileURLToPath(new URL('..', import.meta.url));

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs the CLI from the sources, as `efficient-densenet ARGS…`. */
function cli(...args: string[]): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', ...args], {
      cwd: ROOT,
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, EFFICIENT_DENSENET_BACKEND: 'cpu' },
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    child.on('error', reject);
    child.on('exit', (code) => resolve({ code, stdout, stderr }));
  });
}

function oneLine(stderr: string): string {
  const lines = stderr.trim().split('\n');
  expect(lines).toHaveLength(1);
  expect(lines[0]).toMatch(/^efficient-densenet: /);
  return lines[0]!;
}

let tmp: string;
let data: string;
let tinyModel: string;

beforeAll(async () => {
  tmp = await fs.mkdtemp(path.join(os.tmpdir(), 'cli-train-test-'));
  data = path.join(tmp, 'textures');
  await writeSyntheticImageFolder(data, { numClasses: 2, imagesPerClass: 4, valImagesPerClass: 2, imageSize: 32, seed: 1, variant: 'textures' });
  tinyModel = path.join(tmp, 'tiny.json');
  await fs.writeFile(tinyModel, JSON.stringify({ growthRate: 4, blockConfig: [2, 2], numInitFeatures: 8, bnSize: 2 }));
});
afterAll(async () => {
  await fs.rm(tmp, { recursive: true, force: true });
});

describe('efficient-densenet train / predict', () => {
  it('prints help for both commands', async () => {
    const train = await cli('train', '--help');
    expect(train.code).toBe(0);
    expect(train.stdout).toContain('Usage: efficient-densenet train --data DIR');
    for (const option of ['--model', '--image-size', '--batch', '--epochs', '--optimizer', '--lr', '--memory-efficient', '--pretrained', '--no-check-hash', '--freeze-features', '--out', '--resume', '--seed', '--backend', '--json',
      '--unfreeze-after', '--features-lr-scale', '--augment', '--no-flip', '--photometric', '--jpeg-quality', '--label-smoothing', '--weight-decay', '--workers', '--allow-oversubscribe', '--numerics']) {
      expect(train.stdout).toContain(option);
    }
    const predict = await cli('predict', '--help');
    expect(predict.code).toBe(0);
    expect(predict.stdout).toContain('Usage: efficient-densenet predict --model DIR');
    expect(predict.stdout).toContain('--json');
    const evaluate = await cli('evaluate', '--help');
    expect(evaluate.code).toBe(0);
    expect(evaluate.stdout).toContain('Usage: efficient-densenet evaluate --model DIR --data DIR');
  });

  it('--no-sync-batch-norm is a flag: a value is a usage error', async () => {
    const syncValue = await cli('train', '--data', data, '--no-sync-batch-norm=yes');
    expect(syncValue.code).toBe(2);
    expect(oneLine(syncValue.stderr)).toContain("Option '--no-sync-batch-norm' does not take an argument");
  }, 60_000);

  it('exits 2 with one line on stderr for usage errors', async () => {
    const noData = await cli('train', '--epochs', '1');
    expect(noData.code).toBe(2);
    expect(oneLine(noData.stderr)).toContain('--data is required');

    const badBatch = await cli('train', '--data', data, '--batch', '0');
    expect(badBatch.code).toBe(2);
    expect(oneLine(badBatch.stderr)).toContain("--batch must be an integer ≥ 1, got '0'");

    const badWorkers = await cli('train', '--data', data, '--workers', 'many');
    expect(badWorkers.code).toBe(2);
    expect(oneLine(badWorkers.stderr)).toContain("--workers must be an integer ≥ 1 or 'auto', got 'many'");

    const badMode = await cli('train', '--data', data, '--memory-mode', 'lean');
    expect(badMode.code).toBe(2);
    expect(oneLine(badMode.stderr)).toContain("--memory-mode must be one of naive, bottleneck, layer, block, efficient, auto; got 'lean'");

    const badNumerics = await cli('train', '--data', data, '--numerics', 'double');
    expect(badNumerics.code).toBe(2);
    expect(oneLine(badNumerics.stderr)).toContain("--numerics must be one of fast, exact; got 'double'");

    const twoSpellings = await cli('train', '--data', data, '--memory-mode', 'layer', '--memory-efficient');
    expect(twoSpellings.code).toBe(2);
    expect(oneLine(twoSpellings.stderr)).toContain('are aliases of --memory-mode; give one of them');

    const autoAlone = await cli('train', '--data', data, '--memory-mode', 'auto');
    expect(autoAlone.code).toBe(2);
    expect(oneLine(autoAlone.stderr)).toContain('--memory-mode auto plans the modes to fit --memory-budget');

    // Refused before the backend loads (one line), and before any worker starts.
    const cores = os.availableParallelism();
    const oversubscribed = await cli('train', '--data', data, '--batch', String(cores + 1), '--workers', String(cores + 1));
    expect(oversubscribed.code).toBe(2);
    expect(oneLine(oversubscribed.stderr)).toContain(`${cores + 1} workers are more than this machine's ${cores} cores`);

    const negative = await cli('train', '--data', data, '--memory-budget', '-5GiB');
    expect(negative.code).toBe(2);
    expect(oneLine(negative.stderr)).toContain("--memory-budget: '-5GiB' is not a size; use a positive number with a unit, e.g. 4GiB, 512MiB");

    // Found by the planner after the backend is up; the size named is the size given.
    const tiny = await cli('train', '--data', data, '--model', tinyModel, '--image-size', '32', '--memory-budget', '1KiB');
    expect(tiny.code).toBe(2);
    expect(tiny.stderr.trim().split('\n').pop()).toMatch(/^efficient-densenet: memory budget 1 KiB is too small for batch \d+ at 32²/);

    const badJpeg = await cli('train', '--data', data, '--jpeg-quality', '90-40');
    expect(badJpeg.code).toBe(2);
    expect(oneLine(badJpeg.stderr)).toContain('--jpeg-quality must be A-B');

    const contradiction = await cli('train', '--data', data, '--model', tinyModel, '--image-size', '32', '--unfreeze-after', '1', '--resume', '--overwrite', '--out', path.join(tmp, 'x'));
    expect(contradiction.code).toBe(2);

    // Found by the library, after the backend is up: still a usage error.
    const missing = await cli('train', '--data', path.join(tmp, 'missing'), '--model', tinyModel, '--image-size', '32');
    expect(missing.code).toBe(2);
    expect(oneLine(missing.stderr)).toContain('does not exist');
    expect(missing.stdout).toBe('');
  });

  it('--workers 2 trains data-parallel and says so', async () => {
    const run = await cli('train', '--data', data, '--model', tinyModel, '--image-size', '32', '--batch', '4', '--epochs', '1', '--seed', '3', '--workers', '2', '--backend', 'wasm', '--json');
    expect(run.code, run.stderr).toBe(0);
    expect(run.stderr).toContain('data-parallel: 2 workers on wasm, batch 4 split into shards of 2 or fewer, batch norm synchronized');
    const result = JSON.parse(run.stdout) as { history: { epoch: number; trainLoss: number }[] };
    expect(result.history).toHaveLength(1);
    expect(Number.isFinite(result.history[0]!.trainLoss)).toBe(true);
  });

  it('trains with --json, then predicts with the saved model; a diverging run exits 1', async () => {
    const out = path.join(tmp, 'run');
    const run = await cli('train', '--data', data, '--model', tinyModel, '--image-size', '32', '--batch', '4', '--epochs', '2', '--seed', '3', '--out', out, '--json');
    expect(run.code, run.stderr).toBe(0);
    const result = JSON.parse(run.stdout) as {
      history: { epoch: number; trainLoss: number; valAccuracy: number; valLoss: number }[];
      best: { epoch: number; valAccuracy: number; valLoss: number; confusion: number[][] };
      classNames: string[];
      seed: number;
    };
    expect(result.history.map((h) => h.epoch)).toEqual([1, 2]);
    expect(Object.keys(result.best).sort()).toEqual(['confusion', 'epoch', 'valAccuracy', 'valLoss']);
    expect([1, 2]).toContain(result.best.epoch);
    // The best epoch's validation confusion matrix: 2×2 counts over the validation images, also as an SVG.
    expect(result.best.confusion.flat().reduce((a, b) => a + b, 0)).toBeGreaterThan(0);
    expect(await fs.readFile(path.join(out, 'confusion.svg'), 'utf8')).toContain('<svg');
    expect(result.best.valAccuracy).toBeGreaterThanOrEqual(0);
    expect(result.best.valAccuracy).toBeLessThanOrEqual(1);
    expect(result.classNames).toEqual(['hstripes', 'vstripes']);
    expect(result.seed).toBe(3);

    const image = path.join(data, 'val', 'vstripes', 'vstripes_00000.png');
    const predicted = await cli('predict', '--model', out, '--json', image);
    expect(predicted.code, predicted.stderr).toBe(0);
    const predictions = JSON.parse(predicted.stdout) as { image: string; top: { class: string; probability: number }[] }[];
    expect(predictions).toHaveLength(1);
    expect(predictions[0]!.image).toBe(image);
    expect(predictions[0]!.top.map((t) => t.class).sort()).toEqual(['hstripes', 'vstripes']);
    expect(predictions[0]!.top.reduce((sum, t) => sum + t.probability, 0)).toBeCloseTo(1, 5);

    const text = await cli('predict', '--model', out, '--top', '1', image);
    expect(text.code).toBe(0);
    expect(text.stdout.trim()).toMatch(new RegExp(`^${image.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')}: (hstripes|vstripes) \\d+\\.\\d%$`));

    const diverged = await cli('train', '--data', data, '--model', tinyModel, '--image-size', '32', '--batch', '4', '--epochs', '2', '--optimizer', 'sgd', '--lr', '1e10', '--seed', '3');
    expect(diverged.code).toBe(1);
    expect(oneLine(diverged.stderr.split('\n').filter((l) => l.startsWith('efficient-densenet:')).join('\n'))).toContain('error: training diverged');
  });
});
