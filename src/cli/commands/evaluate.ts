/** `efficient-densenet evaluate`: accuracy, per-class precision/recall and a confusion-matrix SVG of a trained model on a folder. */
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { COMPUTING_BACKENDS, initBackend, type BackendName } from '../../backend/index.js';
import { renderConfusionSvg } from '../../charts/confusion-chart.js';
import { fileSystemHandler } from '../../io/file-system.js';
import { MIN_IMAGE_SIZE } from '../../layers/config.js';
// The DenseNet layer classes a saved model.json names: registered with tfjs when their modules load.
import '../../layers/index.js';
import { evaluateImageFolder, type FolderEvaluation } from '../../train/evaluate-folder.js';
import { writeFileAtomic } from '../../util/atomic.js';
import { UsageError } from '../../util/errors.js';
import { choice, integer, parseCommandArgs } from '../args.js';
import { table } from '../format.js';
import type { CommandIO } from '../command-io.js';
import { readClassNames } from '../../data/class-names.js';


export const EVALUATE_HELP = `Usage: efficient-densenet evaluate --model DIR --data DIR [options]
Evaluates a trained model on a labelled image folder: DIR/<class>/*, or DIR/val/<class>/* when DIR is split
into train/ and val/. Class folders are matched to the model's classes (classes.json) by name. Prints the
accuracy and each class's precision and recall; writes the confusion matrix as an SVG.
  --model DIR           a folder with model.json + weights.bin and classes.json (what train --out writes)
  --data DIR            the labelled image folder
  --confusion FILE      where the confusion-matrix SVG goes (default confusion.svg)
  --image-size S        input side for a model saved with a variable input size (default 224)
  --batch N             images per forward pass (default 32)
  --backend B           ${COMPUTING_BACKENDS.join(' | ')} (default auto, or EFFICIENT_DENSENET_BACKEND)
  --json                print { folder, images, loss, accuracy, classNames, confusion, perClass } as JSON
  --verbose             stack traces on failure`;

export const EVALUATE_OPTIONS = {
  model: { type: 'string' },
  data: { type: 'string' },
  confusion: { type: 'string' },
  'image-size': { type: 'string' },
  batch: { type: 'string' },
  backend: { type: 'string' },
  json: { type: 'boolean' },
  verbose: { type: 'boolean' },
  help: { type: 'boolean' },
} as const;

export async function evaluateCommand(argv: string[], io: CommandIO): Promise<void> {
  const { values } = parseCommandArgs(argv, EVALUATE_OPTIONS);
  if (values.help) return io.stdout(EVALUATE_HELP);
  if (values.model === undefined) throw new UsageError('--model is required (a folder with model.json and classes.json, e.g. a train --out folder)');
  if (values.data === undefined) throw new UsageError('--data is required (a labelled image folder: DIR/<class>/*)');
  const fallbackSize = integer(values['image-size'], 'image-size', { min: MIN_IMAGE_SIZE, fallback: 224 });
  const batchSize = integer(values.batch, 'batch', { fallback: 32 });
  const backend = values.backend === undefined ? undefined : (choice(values.backend, 'backend', COMPUTING_BACKENDS, 'auto') as BackendName);
  const dir = values.model.endsWith('.json') ? path.dirname(values.model) : values.model;
  if (!(await fs.stat(path.join(dir, 'model.json')).catch(() => undefined))?.isFile()) {
    throw new UsageError(`--model ${values.model} holds no model.json; pass the folder that train --out wrote`);
  }
  if (!(await fs.stat(values.data).catch(() => undefined))?.isDirectory()) throw new UsageError(`--data ${values.data} is not a folder`);
  const svgFile = values.confusion ?? 'confusion.svg';

  await initBackend(backend, { logger: io.logger });
  const model = await tf.loadLayersModel(fileSystemHandler(dir));
  let result: FolderEvaluation;
  try {
    const outShape = model.outputs[0]!.shape;
    const classNames = await readClassNames(dir, outShape[outShape.length - 1] as number, io.logger);
    const inShape = model.inputs[0]!.shape;
    const imageSize = typeof inShape[1] === 'number' ? inShape[1] : fallbackSize;
    result = await evaluateImageFolder(model, values.data, { classNames, imageSize, batchSize, logger: io.logger });
  } finally {
    model.dispose();
  }
  const title = `Confusion matrix: ${path.basename(path.resolve(result.folder))} (${result.images} images, accuracy ${(100 * result.accuracy).toFixed(1)}%)`;
  await writeFileAtomic(svgFile, await renderConfusionSvg({ title, classNames: result.classNames, confusion: result.confusion }));
  if (values.json) {
    io.stdout(JSON.stringify(result, null, 2));
    return;
  }
  io.stdout(formatEvaluation(result, svgFile));
}

export function formatEvaluation(result: FolderEvaluation, svgFile: string): string {
  const pct = (v: number | null) => (v === null ? '—' : `${(100 * v).toFixed(1)}%`);
  const rows = result.perClass.map((c) => [c.name, String(c.support), pct(c.precision), pct(c.recall)]);
  return [
    `${result.folder}: ${result.images} images, accuracy ${pct(result.accuracy)}, loss ${result.loss.toFixed(4)}`,
    '',
    table(['class', 'images', 'precision', 'recall'], rows),
    '',
    `confusion matrix (rows: true class, columns: predicted) in ${svgFile}`,
  ].join('\n');
}
