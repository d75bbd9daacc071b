/**
 * Load time of a DenseNet-201-sized PyTorch checkpoint against the safetensors route. PyTorch (the
 * authoritative writer) makes the files: torchvision's densenet201() from seed 0, saved by torch.save in the
 * zip and the legacy format and, the same state_dict, as F32 safetensors (scripts/make_pth_fixtures.py
 * --densenet201). Then, for each file, the median of REPEATS runs of
 *   parse:  the bytes in memory → name → float32 tensor (parseStateDict; the .pth rows include the CRC-32
 *           checks of every zip entry)
 *   load:   loadTorchvisionWeights(densenet201, path): reading the file, parsing, layout conversion, writing
 *           the model's variables.
 * Run on a quiet machine: npx tsx scripts/pth-load-time.ts [--repeats N] [--dir DIR] [--python PATH]
 * (DIR keeps the generated files between runs; PYTHON defaults to /usr/bin/python3 with Debian's
 * python3-torchvision.)
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../src/backend/index.js';
import { densenet201 } from '../src/layers/index.js';
import { parseStateDict } from '../src/weights/state-dict.js';
import { loadTorchvisionWeights } from '../src/weights/torchvision.js';
import { torchvisionNames } from '../src/weights/torchvision-names.js';

const { values } = parseArgs({ options: { repeats: { type: 'string' }, dir: { type: 'string' }, python: { type: 'string' } } });
const repeats = Number(values.repeats ?? 5);
const python = values.python ?? '/usr/bin/python3';
const dir = values.dir ?? mkdtempSync(join(tmpdir(), 'pth-load-time-'));
const FILES = ['densenet201.safetensors', 'densenet201.pth', 'densenet201-legacy.pth'];

if (!FILES.every((f) => existsSync(join(dir, f)))) {
  const made = spawnSync(python, ['scripts/make_pth_fixtures.py', '--densenet201', dir], { stdio: 'inherit' });
  if (made.status !== 0) throw new Error(`${python} scripts/make_pth_fixtures.py --densenet201 ${dir} failed (exit ${made.status}); it needs PyTorch`);
}

function median(xs: number[]): number {
  const sorted = [...xs].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)]!;
}

await initBackend('cpu');
const model = densenet201({ numClasses: 1000, inputShape: [224, 224, 3] });
const expected = torchvisionNames(model).size;
console.log(`densenet201, ${repeats} repeats each, median ms (backend ${tf.getBackend()})`);
console.log('| file | MB | parse ms | load ms |');
console.log('|---|---:|---:|---:|');
for (const file of FILES) {
  const path = join(dir, file);
  const bytes = new Uint8Array(readFileSync(path));
  const parse: number[] = [];
  const load: number[] = [];
  for (let i = 0; i < repeats; i++) {
    let t = performance.now();
    const { tensors } = parseStateDict(bytes, path);
    parse.push(performance.now() - t);
    if (tensors.size !== expected) throw new Error(`${file}: ${tensors.size} tensors, the model has ${expected}`);
    t = performance.now();
    await loadTorchvisionWeights(model, path);
    load.push(performance.now() - t);
  }
  console.log(`| ${file} | ${(statSync(path).size / 1e6).toFixed(1)} | ${median(parse).toFixed(0)} | ${median(load).toFixed(0)} |`);
}
model.dispose();
if (values.dir === undefined) rmSync(dir, { recursive: true, force: true });
