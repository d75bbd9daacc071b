/** `efficient-densenet predict`: the top classes of images under a model saved by `train --out`. */
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { COMPUTING_BACKENDS, initBackend, type BackendName } from '../../backend/index.js';
import { fileSystemHandler } from '../../io/file-system.js';
import { MIN_IMAGE_SIZE } from '../../layers/config.js';
// The DenseNet layer classes a saved model.json names: registered with tfjs when their modules load.
import '../../layers/index.js';
import { imageFolderDataset } from '../../data/dataset.js';
import { readClassNames } from '../../data/class-names.js';
import { UsageError } from '../../util/errors.js';
import { silentLogger } from '../../util/logger.js';
import { choice, integer, parseCommandArgs } from '../args.js';
import type { CommandIO } from '../command-io.js';


export const PREDICT_HELP = `Usage: efficient-densenet predict --model DIR [options] IMAGE…
Prints the most likely classes of each image (JPEG, PNG, WebP) under a trained model. The images are
resized to the model's input size and normalised as in training.
  --model DIR           a folder with model.json + weights.bin and classes.json (what train --out writes)
  --top K               classes per image (default 3)
  --image-size S        input side for a model saved with a variable input size (default 224)
  --backend B           ${COMPUTING_BACKENDS.join(' | ')} (default auto, or EFFICIENT_DENSENET_BACKEND)
  --json                print [{ image, top: [{ class, probability }] }] as JSON
  --verbose             stack traces on failure`;

export const PREDICT_OPTIONS = {
  model: { type: 'string' },
  top: { type: 'string' },
  'image-size': { type: 'string' },
  backend: { type: 'string' },
  json: { type: 'boolean' },
  verbose: { type: 'boolean' },
  help: { type: 'boolean' },
} as const;

export interface Prediction {
  image: string;
  top: { class: string; probability: number }[];
}

export async function predictCommand(argv: string[], io: CommandIO): Promise<void> {
  const { values, positionals } = parseCommandArgs(argv, PREDICT_OPTIONS, true);
  if (values.help) return io.stdout(PREDICT_HELP);
  if (values.model === undefined) throw new UsageError('--model is required (a folder with model.json and classes.json, e.g. a train --out folder)');
  if (positionals.length === 0) throw new UsageError('name at least one image to classify');
  const top = integer(values.top, 'top', { fallback: 3 });
  const fallbackSize = integer(values['image-size'], 'image-size', { min: MIN_IMAGE_SIZE, fallback: 224 });
  const backend = values.backend === undefined ? undefined : (choice(values.backend, 'backend', COMPUTING_BACKENDS, 'auto') as BackendName);
  const dir = values.model.endsWith('.json') ? path.dirname(values.model) : values.model;
  if (!(await fs.stat(path.join(dir, 'model.json')).catch(() => undefined))?.isFile()) {
    throw new UsageError(`--model ${values.model} holds no model.json; pass the folder that train --out wrote`);
  }
  for (const image of positionals) {
    const stat = await fs.stat(image).catch(() => undefined);
    if (!stat?.isFile()) throw new UsageError(`image ${image} ${stat ? 'is not a file' : 'does not exist'}`);
  }

  await initBackend(backend, { logger: io.logger });
  const model = await tf.loadLayersModel(fileSystemHandler(dir));
  try {
    const outShape = model.outputs[0]!.shape;
    const numClasses = outShape[outShape.length - 1] as number;
    const classNames = await readClassNames(dir, numClasses, io.logger);
    const inShape = model.inputs[0]!.shape;
    const imageSize = typeof inShape[1] === 'number' ? inShape[1] : fallbackSize;
    const predictions = await predictFiles(model, positionals, { imageSize, classNames, top: Math.min(top, numClasses) });
    if (values.json) {
      io.stdout(JSON.stringify(predictions, null, 2));
      return;
    }
    io.stdout(
      predictions
        .map((p) => `${p.image}: ${p.top.map((t) => `${t.class} ${(100 * t.probability).toFixed(1)}%`).join(', ')}`)
        .join('\n'),
    );
  } finally {
    model.dispose();
  }
}

/** Softmax probabilities of each image, top `top` classes first, in the order of `files`. */
export async function predictFiles(
  model: tf.LayersModel,
  files: string[],
  options: { imageSize: number; classNames: string[]; top: number },
): Promise<Prediction[]> {
  const { imageSize, classNames, top } = options;
  const samples = files.map((file) => ({ path: file, label: 0 }));
  const dataset = imageFolderDataset(samples, { imageSize, batchSize: Math.min(16, files.length), numClasses: classNames.length, logger: silentLogger });
  // Read back after the loop, asynchronously: webgpu cannot read synchronously in Node.
  const batches: tf.Tensor[] = [];
  const rows: number[][] = [];
  try {
    try {
      await dataset.forEachAsync(({ xs, ys }) => {
        batches.push(tf.tidy(() => tf.softmax(model.apply(xs, { training: false }) as tf.Tensor)));
        tf.dispose([xs, ys]);
      });
    } catch (error) {
      throw new UsageError(`cannot decode the images: ${(error as Error).message}`);
    }
    for (const probabilities of batches) rows.push(...((await probabilities.array()) as number[][]));
  } finally {
    tf.dispose(batches);
  }
  if (dataset.stats.skipped.length > 0) {
    throw new UsageError(`cannot decode image ${dataset.stats.skipped.join(', ')} (JPEG, PNG or WebP expected)`);
  }
  return rows.map((row, i) => ({
    image: files[i]!,
    top: row
      .map((probability, index) => ({ class: classNames[index]!, probability }))
      .sort((a, b) => b.probability - a.probability)
      .slice(0, top),
  }));
}
