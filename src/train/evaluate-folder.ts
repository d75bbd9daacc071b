/**
 * `evaluateImageFolder`: a trained model's accuracy, per-class precision and recall and confusion matrix on
 * a labelled image folder, with the folder's classes matched to the model's by name.
 */
import * as path from 'node:path';
import type * as tf from '@tensorflow/tfjs';
import { UsageError } from '../util/errors.js';
import { silentLogger, type Logger } from '../util/logger.js';
import { imageFolderDataset } from '../data/dataset.js';
import { evaluate, perClassReport, type ClassReport } from './evaluate.js';
import { scanLabelledImages } from '../data/image-folder.js';
import { statOf } from './settings.js';

export interface FolderEvaluation {
  /** The folder actually read: DIR/val when DIR is split into train/ and val/, else DIR. */
  folder: string;
  images: number;
  loss: number;
  accuracy: number;
  /** The model's classes, in its label order. */
  classNames: string[];
  /** confusion[true][predicted], in the model's label order. */
  confusion: number[][];
  perClass: ClassReport[];
}

export interface EvaluateImageFolderOptions {
  /** The model's class names, in label order (a train outDir's classes.json). */
  classNames: string[];
  imageSize: number;
  /** Default 32. */
  batchSize?: number;
  logger?: Logger;
}

/**
 * Evaluates `model` on `DIR/<class>/*` (or on DIR/val/<class>/* when DIR has train/ and val/), resizing as
 * in validation during training. Every class folder must name one of the model's classes; a model class
 * without a folder just has no images.
 */
export async function evaluateImageFolder(model: tf.LayersModel, dir: string, options: EvaluateImageFolderOptions): Promise<FolderEvaluation> {
  const { classNames, imageSize, batchSize = 32, logger = silentLogger } = options;
  const valDir = path.join(dir, 'val');
  const folder = (await statOf(path.join(dir, 'train')))?.isDirectory() && (await statOf(valDir))?.isDirectory() ? valDir : dir;
  const scanned = await scanLabelledImages(folder);
  const unknown = scanned.classNames.filter((c) => !classNames.includes(c));
  if (unknown.length > 0) {
    throw new UsageError(`${folder} has class folders the model does not know: ${unknown.join(', ')} (the model's classes: ${classNames.join(', ')})`);
  }
  const samples = scanned.samples.map((s) => ({ path: s.path, label: classNames.indexOf(scanned.classNames[s.label]!) }));
  const dataset = imageFolderDataset(samples, { imageSize, batchSize, numClasses: classNames.length, logger });
  const result = await evaluate(model, dataset);
  if (dataset.stats.skipped.length > 0) logger.warn(`${dataset.stats.skipped.length} unreadable image(s) left out`);
  return {
    folder,
    images: result.images,
    loss: result.loss,
    accuracy: result.accuracy,
    classNames,
    confusion: result.confusion,
    perClass: perClassReport(result.confusion, classNames),
  };
}
