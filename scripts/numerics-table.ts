/**
 * Re-measures issue 10's table: one training step of DenseNet-121 (4 classes, torchvision's weights by the
 * deterministic formula, whose BN parameters and running statistics are perturbed) at 96², batch 3, against
 * its float64 run, made on the fly by the local PyTorch (scripts/make_float64_fixtures.py --densenet121) in a
 * temporary folder; nothing is written to the repository. PyTorch float32's own error beside tfjs cpu and wasm
 * (naive / layer), and both again with the old float32 reductions (setChannelSumsPath('ops')) for comparison.
 * An error measurement, not a timing; the cpu backend takes 1–2 minutes per mode.
 *
 *   npx tsx scripts/numerics-table.ts [--size 96] [--batch 3] [--python /usr/bin/python3] [--no-old]
 *                                     [--backends cpu,wasm] [--modes naive,layer]
 */
import { spawnSync } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { initBackend } from '../src/backend/index.js';
import { setChannelSumsPath } from '../src/norm/channel-sums.js';
import type { MemoryMode } from '../src/layers/config.js';
import { deterministicTorchvisionStateDict } from '../test/helpers/deterministic-weights.js';
import { buildFixtureModel, float64Errors, loadFloat64Fixture, type Float64Errors } from '../test/helpers/float64.js';

function option(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && process.argv[i + 1] ? process.argv[i + 1]! : fallback;
}
const size = Number(option('size', '96'));
const batch = Number(option('batch', '3'));
const python = option('python', process.env['TORCH_PYTHON'] ?? '/usr/bin/python3');
const withOld = !process.argv.includes('--no-old');
const backends = option('backends', 'cpu,wasm').split(',');
const modes = option('modes', 'naive,layer').split(',') as MemoryMode[];

const dir = await mkdtemp(join(tmpdir(), 'numerics-table-'));
try {
  const script = fileURLToPath(new URL('./make_float64_fixtures.py', import.meta.url));
  process.stderr.write(`float64 and float32 reference with ${python} (DenseNet-121, ${size}², batch ${batch})...\n`);
  const made = spawnSync(python, [script, '--densenet121', String(size), String(batch), dir], { encoding: 'utf8', timeout: 1_800_000 });
  if (made.status !== 0) throw new Error(`the PyTorch reference failed (${made.status}): ${made.error?.message ?? made.stderr}`);
  // The weights follow the deterministic formula; config.json lists the state_dict names and shapes.
  const specs = (JSON.parse(await readFile(join(dir, 'config.json'), 'utf8')) as { state_dict: [string, number[]][] }).state_dict;
  const fixture = await loadFloat64Fixture(dir, `densenet121-${size}-b${batch}`, deterministicTorchvisionStateDict(specs));

  const columns: { label: string; backend: 'cpu' | 'wasm'; old: boolean }[] = [];
  for (const old of withOld ? [false, true] : [false]) {
    for (const backend of ['cpu', 'wasm'] as const) {
      if (backends.includes(backend)) columns.push({ label: `tfjs \`${backend}\`${old ? ', old float32 reductions' : ''}`, backend, old });
    }
  }
  const results: Float64Errors[][] = [];
  for (const column of columns) {
    await initBackend(column.backend);
    setChannelSumsPath(column.old ? 'ops' : undefined);
    const row: Float64Errors[] = [];
    for (const mode of modes) {
      const start = Date.now();
      const model = await buildFixtureModel(fixture, mode);
      row.push(float64Errors(fixture, model));
      model.dispose();
      process.stderr.write(`${column.label} ${mode}: done in ${((Date.now() - start) / 1000).toFixed(0)} s\n`);
    }
    results.push(row);
  }
  setChannelSumsPath(undefined);

  const torch = fixture.config.torch_float32_errors;
  const f = (v: number) => v.toExponential(1);
  const lines = [
    `DenseNet-121, ${size}², batch ${batch}, perturbed BN; error against float64 (${modes.join(' / ')}):`,
    '',
    `| | PyTorch float32 | ${columns.map((c) => `${c.label} ${modes.join(' / ')}`).join(' | ')} |`,
    `|---|---:|${columns.map(() => '---:').join('|')}|`,
  ];
  const measures: [keyof Float64Errors, string][] = [
    ['grad_all', 'all gradients (relative L2)'],
    ['grad_worst', 'worst tensor (held against max(own norm, 1e-2·largest))'],
    ['train_logits', 'train-mode logits (max rel)'],
    ['eval_logits', 'eval-mode logits (max rel)'],
    ['loss', 'loss (rel)'],
    ['running', 'running statistics (max rel)'],
  ];
  for (const [key, label] of measures) {
    lines.push(`| ${label} | ${f(torch[key] as number)} | ${results.map((row) => row.map((e) => f(e[key] as number)).join(' / ')).join(' | ')} |`);
  }
  lines.push('', `worst tensors: PyTorch ${torch.grad_worst_name}; ${columns.map((c, i) => `${c.label}: ${results[i]!.map((e) => e.grad_worst_name).join(' / ')}`).join('; ')}`);
  console.log(lines.join('\n'));
} finally {
  await rm(dir, { recursive: true, force: true });
}
