/**
 * scripts/gpu-check.sh, the one script for a GPU machine (docs/gpu.md), run here on a tiny configuration: Node
 * from a tarball (as there, where no Node is installed), doctor, one webgpu configuration, the JSON and the
 * markdown table. Needs a WebGPU adapter (skipped with the reason otherwise); the refusal without a Node
 * tarball runs everywhere.
 */
import { execFile } from 'node:child_process';
import { promises as fs } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { findWebGPUAdapter } from '../src/backend/webgpu/index.js';
import { WEBGPU_PEAK_FACTOR } from '../src/backend/traits.js';

const run = promisify(execFile);
const SCRIPT = path.resolve('scripts/gpu-check.sh');
const search = await findWebGPUAdapter();
if (!search.found) process.stderr.write(`gpu-check.test.ts: the script's run is SKIPPED: ${search.missing}\n`);

let tmp: string;
beforeAll(async () => {
  tmp = await fs.mkdtemp(path.join(os.tmpdir(), 'gpu-check-test-'));
});
afterAll(async () => {
  await fs.rm(tmp, { recursive: true, force: true });
});

it('a Node tarball that is not there: it stops with one line naming it', async () => {
  const result = await run('bash', [SCRIPT, path.join(tmp, 'refused')], {
    env: { ...process.env, GPU_CHECK_NODE_TARBALL: path.join(tmp, 'no-such-node.tar.xz') },
    timeout: 60_000,
  }).then(
    () => ({ code: 0, stderr: '' }),
    (error: { code: number; stderr: string }) => error,
  );
  expect(result.code).toBe(1);
  expect(result.stderr.trim()).toBe(`gpu-check: error: GPU_CHECK_NODE_TARBALL: no such file: ${path.join(tmp, 'no-such-node.tar.xz')}`);
});

describe.skipIf(!search.found)(`gpu-check.sh on ${search.found ? `adapter "${search.adapter.name}"` : 'no adapter: SKIPPED'}`, () => {
  it('from a Node tarball: doctor, a webgpu configuration, one JSON and a markdown table', async () => {
    // Node as a tarball holding bin/node, the way the GPU machine gets it.
    const tarball = path.join(tmp, 'node.tar.gz');
    await run('tar', ['-C', path.dirname(path.dirname(process.execPath)), '-czf', tarball, `bin/${path.basename(process.execPath)}`]);
    const out = path.join(tmp, 'out');
    const env = {
      ...process.env,
      GPU_CHECK_NODE_TARBALL: tarball,
      GPU_CHECK_MODEL: 'densenet121',
      GPU_CHECK_IMAGE_SIZE: '32',
      GPU_CHECK_BATCHES: '2', // batch 1 at 32² leaves 1 value per channel for the last block's batch norm
      GPU_CHECK_MODES: 'layer',
      GPU_CHECK_STEPS: '1',
      GPU_CHECK_CLASSES: '4',
      GPU_CHECK_CLI: 'tsx', // the sources: this checkout's dist/ may be stale or absent
      GPU_CHECK_BUDGET_S: '400',
    };
    await run('bash', [SCRIPT, out], { env, timeout: 480_000, maxBuffer: 1 << 24 });
    const report = JSON.parse(await fs.readFile(path.join(out, 'gpu-check.json'), 'utf8'));
    expect(report.model).toBe('densenet121');
    expect(report.cli).toBe('tsx');
    expect(report.adapter).toBe(search.found ? search.adapter.name : null);
    expect(report.doctor.backends.find((b: { backend: string }) => b.backend === 'webgpu').available).toBe(true);
    expect(report.webgpu).toHaveLength(1);
    const [row] = report.webgpu;
    expect(row).toMatchObject({ mode: 'layer', batch: 2, status: 'ok', exitCode: 0 });
    expect(row.result.backendPeakBytes).toBeGreaterThanOrEqual(row.result.peakBytes);
    expect(row.backendOverTensorPeak).toBeLessThanOrEqual(WEBGPU_PEAK_FACTOR);
    expect(row.result.msPerStep).toBeGreaterThan(0);
    expect(report.elapsedSeconds).toBeLessThanOrEqual(400);
    const markdown = await fs.readFile(path.join(out, 'gpu-check.md'), 'utf8');
    expect(markdown).toMatch(/^# GPU check: densenet121 32²/);
    expect(markdown).toMatch(/\n\| 2 \| layer \| ok \| \d+ \| \d+ \| \d+ \| \d+ \| 1\.\d{3} \| \d+ \| [\d.]+ \|\n/);
  }, 500_000);
});
