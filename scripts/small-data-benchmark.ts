/**
 * The small-data goal (issue 13): three 4-class tasks the project generates — ≤ 100 PNG training images per
 * class, JPEG validation images (another format than training) — each trained by the CLI with only
 * --data --epochs --image-size --batch, on the default backend (the images are drawn at --image-size). Prints, per task, the best validation
 * accuracy, the wall-clock seconds of the whole CLI run (process start to exit, as /usr/bin/time reports)
 * and the validation curve; the goal is ≥ 90% within 300 s each on a quiet 2-core machine.
 *
 *   npx tsx scripts/small-data-benchmark.ts [--epochs N] [--image-size S] [--batch N] [--tasks a,b,c]
 *                                           [--work DIR] [--chart FILE.svg] [-- extra train options]
 *
 * --chart draws every task's validation curve (accuracy per epoch, the 90% goal as a line) into FILE.svg.
 *
 * Defaults: 15 epochs of 13 batches of 32 at 32² (195 steps; with validation about 225 step-equivalents). On the
 * 2-core machine while another job shared it, an epoch with its validation took about 14 s (~0.9 s per
 * DenseNet-121 wasm step), about 210 s per task in all, so 15 epochs should fit 300 s on a quiet machine with room
 * to spare; 20 epochs would not leave that room on a busy one.
 * Run it on a quiet machine: timings taken while other processes compete for the cores are meaningless.
 * The tasks' images are grey-level shapes and patterns with colour noise (why not colours: src/data/synthetic.ts).
 */
import { spawn } from 'node:child_process';
import { promises as fs } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { renderLineChartSvg } from '../src/charts/line-chart.js';
import { writeFileAtomic } from '../src/util/atomic.js';
import { writeSyntheticImageFolder, type SyntheticImageFolderOptions } from '../src/data/synthetic.js';

const ROOT = fileURLToPath(new URL('..', import.meta.url));

/** Each task: a variant, four classes of it, a seed; 100 PNG training and 40 JPEG validation images per class. */
const TASKS: Record<string, Omit<SyntheticImageFolderOptions, 'imagesPerClass'>> = {
  shapes: { variant: 'shapes', classes: ['circle', 'square', 'triangle', 'cross'], seed: 1 },
  outlines: { variant: 'shapes', classes: ['circle', 'ring', 'diamond', 'square'], seed: 2 },
  // Mirror-symmetric patterns only: the default augmentation flips (a diagonal would become an antidiagonal).
  textures: { variant: 'textures', classes: ['hstripes', 'vstripes', 'checker', 'dots'], seed: 3 },
};

const argv = process.argv.slice(2);
const split = argv.indexOf('--');
const own = split >= 0 ? argv.slice(0, split) : argv;
const extra = split >= 0 ? argv.slice(split + 1) : [];
const option = (name: string, fallback: string): string => {
  const i = own.indexOf(`--${name}`);
  return i >= 0 && own[i + 1] !== undefined ? own[i + 1]! : fallback;
};
const epochs = option('epochs', '15');
const imageSize = option('image-size', '32');
const batch = option('batch', '32');
const tasks = option('tasks', Object.keys(TASKS).join(',')).split(',');
const work = option('work', path.join(os.tmpdir(), 'small-data-benchmark'));
const chart = option('chart', '');

interface Outcome {
  task: string;
  best: number;
  bestEpoch: number;
  seconds: number;
  curve: string;
  accuracies: number[];
}

async function runTask(task: string): Promise<Outcome> {
  const spec = TASKS[task];
  if (!spec) throw new Error(`unknown task '${task}'; tasks: ${Object.keys(TASKS).join(', ')}`);
  const data = path.join(work, task);
  await writeSyntheticImageFolder(data, { ...spec, imagesPerClass: 100, valImagesPerClass: 40, imageSize: Number(imageSize), valFormat: 'jpeg', jpegQuality: 75, overwrite: true });
  const args = ['--import', 'tsx', path.join(ROOT, 'src/cli/main.ts'), 'train', '--data', data, '--epochs', epochs, '--image-size', imageSize, '--batch', batch, '--json', ...extra];
  const start = performance.now();
  const child = spawn(process.execPath, args, { cwd: ROOT, stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  child.stdout.on('data', (chunk: Buffer) => (out += chunk.toString()));
  const code = await new Promise<number | null>((resolve) => child.on('exit', resolve));
  const seconds = (performance.now() - start) / 1000;
  if (code !== 0) throw new Error(`train on ${task} exited with ${code}`);
  const result = JSON.parse(out) as { history: { epoch: number; valAccuracy: number }[]; best: { epoch: number; valAccuracy: number } };
  const curve = result.history.map((h) => (100 * h.valAccuracy).toFixed(0)).join(' ');
  const accuracies = result.history.map((h) => 100 * h.valAccuracy);
  return { task, best: result.best.valAccuracy, bestEpoch: result.best.epoch, seconds, curve, accuracies };
}

const outcomes: Outcome[] = [];
for (const task of tasks) {
  const outcome = await runTask(task);
  outcomes.push(outcome);
  process.stdout.write(
    `${task}: best validation accuracy ${(100 * outcome.best).toFixed(1)}% (epoch ${outcome.bestEpoch}), ${outcome.seconds.toFixed(0)} s wall; ` +
      `validation accuracy per epoch (%): ${outcome.curve}\n`,
  );
}
const passed = outcomes.filter((o) => o.best >= 0.9 && o.seconds <= 300).length;
process.stdout.write(`\n${passed}/${outcomes.length} tasks reach ≥ 90% within 300 s (epochs ${epochs}, image size ${imageSize}, batch ${batch}${extra.length ? `, ${extra.join(' ')}` : ''})\n`);
if (chart) {
  const svg = await renderLineChartSvg({
    title: `Small-data goal: validation accuracy per epoch (DenseNet-121, ${imageSize}², batch ${batch}, wasm)`,
    xLabel: 'epoch',
    yLabel: 'validation accuracy (%)',
    integerX: true,
    rules: [{ y: 90, label: 'goal 90%' }],
    series: outcomes.map((o) => ({ name: `${o.task} (${o.seconds.toFixed(0)} s)`, points: o.accuracies.map((y, i) => ({ x: i + 1, y })) })),
  });
  await writeFileAtomic(chart, svg);
  process.stdout.write(`curves written to ${chart}\n`);
}
await fs.rm(work, { recursive: true, force: true }).catch(() => undefined);
