/** Where a run's batches come from: an image folder (scanned, split, decoded with sharp) or the caller's datasets. */
import * as tf from '@tensorflow/tfjs';
import type * as tfd from '@tensorflow/tfjs-data';
import { MIN_IMAGE_SIZE } from '../layers/config.js';
import { UsageError } from '../util/errors.js';
import type { Logger } from '../util/logger.js';
import { deriveSeed } from '../util/rng.js';
import { imageFolderDataset, type ImageFolderDataset } from '../data/dataset.js';
import { scanImageFolder, type ImageFolder } from '../data/image-folder.js';
import { TRAIN_DEFAULTS, type Checked, type RunSettings } from './options.js';
import type { TrainBatch } from './types.js';

export interface DataSource {
  classNames: string[];
  numClasses: number;
  imageSize: number;
  /** Batches per epoch when known. */
  batchesPerEpoch: number | null;
  trainFor(epoch: number): tfd.Dataset<TrainBatch>;
  val: tfd.Dataset<TrainBatch> | null;
  folder?: ImageFolder;
  /** Training images of a folder; null for datasets. */
  trainImages: number | null;
}

export function epochSeed(seed: number, epoch: number): number {
  return deriveSeed(seed, 0x7e57, epoch);
}

export async function prepareData(checked: Checked, settings: RunSettings, logger: Logger): Promise<DataSource> {
  if (settings.data !== null && checked.datasets === undefined) {
    const folder = await scanImageFolder(settings.data, {
      // Left out at the default so that scanImageFolder only remarks on a valSplit the caller chose.
      valSplit: settings.valSplit === TRAIN_DEFAULTS.valSplit ? undefined : settings.valSplit,
      seed: settings.seed,
      numClasses: settings.numClasses > 0 ? settings.numClasses : undefined,
      logger,
    });
    if (folder.classNames.length < 2) {
      throw new UsageError(`image folder ${settings.data} has ${folder.classNames.length} class folder; a classifier needs at least 2`);
    }
    const imageSize = settings.imageSize > 0 ? settings.imageSize : TRAIN_DEFAULTS.imageSize;
    const numClasses = folder.classNames.length;
    const base = { imageSize, batchSize: settings.batchSize, numClasses, logger };
    const val = folder.val.length > 0 ? imageFolderDataset(folder.val, { ...base, augment: 'none' }) : null;
    if (folder.ignoredFiles > 0) logger.info(`${folder.ignoredFiles} non-image file(s) under ${settings.data} are ignored`);
    return {
      classNames: folder.classNames,
      numClasses,
      imageSize,
      batchesPerEpoch: Math.ceil(folder.train.length / settings.batchSize),
      trainFor: (epoch) =>
        // Read at each epoch's start: the recipe (recipe.ts) fills these settings after the folder is scanned.
        imageFolderDataset(folder.train, {
          ...base,
          augment: settings.augment,
          cropPadding: settings.cropPadding,
          flip: settings.flip,
          photometric: settings.photometric,
          jpegQuality: settings.jpegQuality,
          shuffle: true,
          seed: epochSeed(settings.seed, epoch),
        }) as ImageFolderDataset,
      val,
      folder,
      trainImages: folder.train.length,
    };
  }
  const datasets = checked.datasets;
  if (!datasets) {
    throw new UsageError('data is required: the snapshot was trained on datasets, which must be passed again to resume');
  }
  // One batch tells the image size and the number of classes when they are not given.
  const first = await datasets.train.take(1).toArray();
  if (first.length === 0) throw new UsageError('data.train is empty');
  const { xs, ys } = first[0]!;
  const shapes = { xs: xs.shape, ys: ys.shape };
  tf.dispose([xs, ys]);
  if (shapes.xs.length !== 4 || shapes.xs[3] !== 3 || shapes.ys.length !== 2 || shapes.ys[0] !== shapes.xs[0]) {
    throw new UsageError(`data.train batches must be { xs: [n, h, w, 3], ys: [n, classes] }; got xs [${shapes.xs}] and ys [${shapes.ys}]`);
  }
  const numClasses = shapes.ys[1]!;
  if (settings.numClasses > 0 && settings.numClasses !== numClasses) {
    throw new UsageError(`numClasses is ${settings.numClasses} but data.train's labels have ${numClasses} classes`);
  }
  if (shapes.xs[1] !== shapes.xs[2]) throw new UsageError(`data.train images must be square; got ${shapes.xs[1]}×${shapes.xs[2]}`);
  const imageSize = shapes.xs[1]!;
  if (settings.imageSize > 0 && settings.imageSize !== imageSize) {
    throw new UsageError(`imageSize is ${settings.imageSize} but data.train's images are ${imageSize}×${imageSize}`);
  }
  if (imageSize < MIN_IMAGE_SIZE) throw new UsageError(`data.train's images are ${imageSize}×${imageSize}; DenseNets need ≥ ${MIN_IMAGE_SIZE}`);
  const classNames = checked.classNames ?? Array.from({ length: numClasses }, (_, i) => String(i));
  if (classNames.length !== numClasses) throw new UsageError(`classNames has ${classNames.length} names for ${numClasses} classes`);
  return { classNames, numClasses, imageSize, batchesPerEpoch: null, trainFor: () => datasets.train, val: datasets.val ?? null, trainImages: null };
}
