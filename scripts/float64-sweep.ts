/**
 * Seed sweep of one training step against float64: for each fixture folder made by
 * `/usr/bin/python3 scripts/make_float64_fixtures.py --densenet121 SIZE BATCH DIR --seed S`, PyTorch float32's
 * all-gradients error beside tfjs's per backend and memory mode, as a Markdown table; `--json FILE` also
 * appends every case's per-tensor gradient errors (one JSON object a line) for localising which layer departs.
 * An error measurement, not a timing.
 *
 *   npx tsx scripts/float64-sweep.ts DIR... [--backends cpu,wasm] [--modes naive,layer,block] [--json FILE]
 */
import { appendFile } from 'node:fs/promises';
import { basename } from 'node:path';
import { initBackend } from '../src/backend/index.js';
import type { MemoryMode } from '../src/layers/config.js';
import { buildFixtureModel, float64Errors, loadFloat64Fixture } from '../test/helpers/float64.js';

const args = process.argv.slice(2);
function option(name: string, fallback: string): string {
  const i = args.indexOf(`--${name}`);
  if (i < 0) return fallback;
  const [value] = args.splice(i, 2).slice(1);
  return value ?? fallback;
}
const backends = option('backends', 'cpu,wasm').split(',');
const modes = option('modes', 'naive,layer,block').split(',') as MemoryMode[];
const json = option('json', '');
const dirs = args;

const f = (v: number) => v.toExponential(1);
const header = `| fixture | PyTorch float32 | ${backends.flatMap((b) => modes.map((m) => `${b} ${m}`)).join(' | ')} | worst ratio |`;
console.log(header);
console.log(`|---|---:|${backends.flatMap(() => modes.map(() => '---:')).join('|')}|---:|`);
for (const dir of dirs) {
  // Without a weights file the fixture's weights are rebuilt from the generator's formula (loadFloat64Fixture).
  const fixture = await loadFloat64Fixture(dir, basename(dir));
  const torch = fixture.config.torch_float32_errors.grad_all;
  const cells: string[] = [];
  let worst = 0;
  for (const backend of backends) {
    await initBackend(backend as 'cpu' | 'wasm');
    for (const mode of modes) {
      const model = await buildFixtureModel(fixture, mode);
      const errors = float64Errors(fixture, model, !!json);
      model.dispose();
      worst = Math.max(worst, errors.grad_all / torch);
      cells.push(f(errors.grad_all));
      process.stderr.write(`${basename(dir)} ${backend} ${mode}: ${f(errors.grad_all)} (PyTorch ${f(torch)}), worst ${errors.grad_worst_name}\n`);
      if (json) await appendFile(json, `${JSON.stringify({ fixture: basename(dir), backend, mode, torch: fixture.config.torch_float32_errors, errors })}\n`);
    }
  }
  console.log(`| ${basename(dir)} | ${f(torch)} | ${cells.join(' | ')} | ${worst.toFixed(2)} |`);
}
