import { promises as fs } from 'node:fs';
import * as tf from '@tensorflow/tfjs';
import * as tfd from '@tensorflow/tfjs-data';
import sharp, { type Sharp } from 'sharp';
import { jpegJitter, photometricJitter, randomResizedCropBox, type CropBox } from './augment.js';
import { UsageError } from '../util/errors.js';
import { type Logger, silentLogger } from '../util/logger.js';
import { createRng, deriveSeed, type Rng, shuffleInPlace } from '../util/rng.js';
import type { Sample } from './image-folder.js';

/**
 * Training-time augmentation.
 * - 'none': resize to imageSize × imageSize.
 * - 'flip': resize, then horizontal flip with p = 0.5.
 * - 'crop': resize, then CIFAR-style random crop from the image zero-padded by `cropPadding` px on each
 *   side (torchvision `RandomCrop(size, padding=4)`), then horizontal flip with p = 0.5.
 * - 'resized-crop': torchvision `RandomResizedCrop(size, scale, ratio)` on the original image, then
 *   horizontal flip with p = 0.5 (the usual ImageNet recipe).
 */
export type Augment = 'none' | 'flip' | 'crop' | 'resized-crop';

export const AUGMENTS: readonly Augment[] = ['none', 'flip', 'crop', 'resized-crop'];

export { randomResizedCropBox, type CropBox } from './augment.js';

/** ImageNet statistics used by torchvision's pretrained weights, on pixels scaled to [0, 1]. */
export const IMAGENET_MEAN: readonly [number, number, number] = [0.485, 0.456, 0.406];
export const IMAGENET_STD: readonly [number, number, number] = [0.229, 0.224, 0.225];

export interface ImageFolderDatasetOptions {
  /** Side of the square network input. */
  imageSize: number;
  batchSize: number;
  numClasses: number;
  /** Default 'none' (what evaluation wants). */
  augment?: Augment;
  /** Area fraction range for 'resized-crop'. Default [0.08, 1] (torchvision); e.g. [0.35, 1] is milder for small images. */
  resizedCropScale?: readonly [number, number];
  /** Aspect-ratio range for 'resized-crop'. Default [3/4, 4/3]. */
  resizedCropRatio?: readonly [number, number];
  /** Zero padding for 'crop'. Default 4. */
  cropPadding?: number;
  /**
   * Whether 'flip', 'crop' and 'resized-crop' mirror half of the images. Default true. Turn it off when
   * mirroring changes the class (a 'b' and a 'd', a diagonal and an antidiagonal).
   */
  flip?: boolean;
  /** ColorJitter strength s (brightness, contrast and saturation factors in [1 − s, 1 + s]); 0 is off. Default 0. */
  photometric?: number;
  /** Re-encode half of the images as JPEG at a quality drawn from [min, max] (1–100); null is off. Default null. */
  jpegQuality?: readonly [number, number] | null;
  /** Reshuffle the samples on every pass. Default false. */
  shuffle?: boolean;
  /** Seeds shuffling and augmentation. Default 0. */
  seed?: number;
  /** Unreadable files are reported here (once each). */
  logger?: Logger;
  /**
   * How many images are being decoded, or wait decoded, ahead of the batch being consumed. The default,
   * batchSize, decodes the next batch while the current one trains.
   */
  prefetch?: number;
  /** Drop a last, smaller batch. Default false. */
  dropRemainder?: boolean;
}

export interface DataStats {
  /** Files that could not be read or decoded, each listed once; they are left out of every batch. */
  skipped: string[];
  /** Images decoded successfully, over all passes. */
  decoded: number;
}

/** NHWC float32, ImageNet-normalised; ys one-hot float32. */
export type ImageBatch = { xs: tf.Tensor4D; ys: tf.Tensor2D };

export type ImageFolderDataset = tfd.Dataset<ImageBatch> & { readonly stats: DataStats };

/**
 * A tfjs-data pipeline over image files. Each iteration over the dataset (each epoch) decodes every file
 * with sharp (JPEG, PNG, WebP; alpha dropped, greyscale expanded to RGB) and yields batches whose tensors
 * the consumer owns and must dispose. Decoding runs in sharp's thread pool ahead of the consumer
 * (`prefetch` images in flight), so it overlaps the training step.
 *
 * Evaluation (augment 'none') resizes the whole image straight to imageSize × imageSize, ignoring the
 * aspect ratio, with no centre crop: unlike torchvision's ImageNet recipe (Resize 256 + CenterCrop 224), no
 * part of the object is cut away, which matters for small, loosely framed datasets.
 *
 * Resizing uses sharp's 'linear' kernel, which antialiases when shrinking, close to torchvision's
 * bilinear `antialias=True` resize. EXIF orientation is not applied (neither does PIL by default).
 *
 * Determinism: the n-th pass over a dataset built with the same samples and options yields identical
 * batches, whatever the order in which decodes finish: shuffling and every augmentation draw come from
 * streams derived from (seed, pass number, position), never from Math.random.
 */
export function imageFolderDataset(
  sampleList: readonly Sample[],
  options: ImageFolderDatasetOptions,
): ImageFolderDataset {
  const config = validate(sampleList, options);
  // A copy, so a caller editing its array later cannot change what later passes read.
  const samples = sampleList.map((s) => ({ path: s.path, label: s.label }));
  const stats: DataStats = { skipped: [], decoded: 0 };
  const bad = new Set<string>();
  let pass = 0;

  const decodeOne = async (sample: Sample, itemSeed: number): Promise<DecodedImage | null> => {
    if (bad.has(sample.path)) return null;
    try {
      const decoded = await decodeAndAugment(sample.path, config, createRng(itemSeed));
      stats.decoded++;
      return decoded;
    } catch (error) {
      if (!bad.has(sample.path)) {
        bad.add(sample.path);
        stats.skipped.push(sample.path);
        const reason = error instanceof Error ? error.message : String(error);
        config.logger.warn(`skipping unreadable image ${sample.path}: ${reason}`);
      }
      return null;
    }
  };

  async function* batches(): AsyncGenerator<ImageBatch, void, undefined> {
    const passIndex = pass++;
    const order = samples.map((_, i) => i);
    if (config.shuffle) shuffleInPlace(order, createRng(deriveSeed(config.seed, passIndex, 0)));
    const augmentRng = createRng(deriveSeed(config.seed, passIndex, 1));
    // Drawn up front, in order, so each image's augmentation does not depend on decode timing.
    const itemSeeds = order.map(() => augmentRng.uint32());

    const pending: Promise<DecodedImage | null>[] = [];
    let launched = 0;
    const launch = (): void => {
      while (launched < order.length && pending.length < config.prefetch) {
        pending.push(decodeOne(samples[order[launched]!]!, itemSeeds[launched]!));
        launched++;
      }
    };

    const pixelsPerImage = config.imageSize * config.imageSize * 3;
    let xs = new Float32Array(config.batchSize * pixelsPerImage);
    let ys = new Float32Array(config.batchSize * config.numClasses);
    let filled = 0;
    let yielded = 0;
    let consumed = 0;
    launch();
    while (pending.length > 0) {
      const decoded = await pending.shift()!;
      const sample = samples[order[consumed++]!]!;
      launch();
      if (decoded === null) continue;
      writeNormalised(xs, filled * pixelsPerImage, decoded, config.imageSize);
      ys[filled * config.numClasses + sample.label] = 1;
      filled++;
      yielded++;
      if (filled === config.batchSize) {
        yield makeBatch(xs, ys, filled, config);
        // Fresh buffers: a tfjs tensor may keep a reference to the array it was made from.
        xs = new Float32Array(config.batchSize * pixelsPerImage);
        ys = new Float32Array(config.batchSize * config.numClasses);
        filled = 0;
      }
    }
    if (filled > 0 && !config.dropRemainder) {
      yield makeBatch(xs.slice(0, filled * pixelsPerImage), ys.slice(0, filled * config.numClasses), filled, config);
    }
    if (yielded === 0) {
      throw new Error(
        `none of the ${samples.length} images could be decoded (first: ${stats.skipped[0] ?? samples[0]!.path}); see the warnings`,
      );
    }
  }

  const dataset = tfd.generator<ImageBatch>(batches);
  return Object.assign(dataset, { stats }) as ImageFolderDataset;
}

interface Config {
  imageSize: number;
  batchSize: number;
  numClasses: number;
  augment: Augment;
  scale: readonly [number, number];
  ratio: readonly [number, number];
  padding: number;
  flip: boolean;
  photometric: number;
  jpegQuality: readonly [number, number] | null;
  shuffle: boolean;
  seed: number;
  logger: Logger;
  prefetch: number;
  dropRemainder: boolean;
}

function validate(samples: readonly Sample[], o: ImageFolderDatasetOptions): Config {
  const positiveInt = (name: string, v: number): void => {
    if (!(Number.isInteger(v) && v >= 1)) throw new UsageError(`${name} must be a positive integer, got ${v}`);
  };
  positiveInt('imageSize', o.imageSize);
  positiveInt('batchSize', o.batchSize);
  positiveInt('numClasses', o.numClasses);
  if (samples.length === 0) throw new UsageError('the dataset has no samples');
  for (const s of samples) {
    if (!(Number.isInteger(s.label) && s.label >= 0 && s.label < o.numClasses)) {
      throw new UsageError(`sample ${s.path} has label ${s.label}; labels must be integers in [0, ${o.numClasses})`);
    }
  }
  const augment = o.augment ?? 'none';
  if (!AUGMENTS.includes(augment)) {
    throw new UsageError(`augment must be one of ${AUGMENTS.join(', ')}; got '${String(augment)}'`);
  }
  const scale = o.resizedCropScale ?? [0.08, 1];
  if (!(scale[0] > 0 && scale[0] <= scale[1] && scale[1] <= 1)) {
    throw new UsageError(`resizedCropScale must satisfy 0 < min <= max <= 1, got [${scale.join(', ')}]`);
  }
  const ratio = o.resizedCropRatio ?? [3 / 4, 4 / 3];
  if (!(ratio[0] > 0 && ratio[0] <= ratio[1] && Number.isFinite(ratio[1]))) {
    throw new UsageError(`resizedCropRatio must satisfy 0 < min <= max, got [${ratio.join(', ')}]`);
  }
  const padding = o.cropPadding ?? 4;
  if (!(Number.isInteger(padding) && padding >= 0)) {
    throw new UsageError(`cropPadding must be a non-negative integer, got ${padding}`);
  }
  const photometric = o.photometric ?? 0;
  if (!(Number.isFinite(photometric) && photometric >= 0 && photometric < 1)) {
    throw new UsageError(`photometric must be a number in [0, 1), got ${photometric}`);
  }
  const jpegQuality = o.jpegQuality ?? null;
  if (jpegQuality !== null && !(Number.isInteger(jpegQuality[0]) && Number.isInteger(jpegQuality[1]) && jpegQuality[0] >= 1 && jpegQuality[0] <= jpegQuality[1] && jpegQuality[1] <= 100)) {
    throw new UsageError(`jpegQuality must be null or [min, max] integers with 1 <= min <= max <= 100, got [${String(jpegQuality)}]`);
  }
  const prefetch = o.prefetch ?? o.batchSize;
  positiveInt('prefetch', prefetch);
  if (o.dropRemainder === true && samples.length < o.batchSize) {
    throw new UsageError(`dropRemainder with batchSize ${o.batchSize} would drop all ${samples.length} samples`);
  }
  const seed = o.seed ?? 0;
  if (!Number.isFinite(seed)) throw new UsageError(`seed must be a finite number, got ${seed}`);
  return {
    imageSize: o.imageSize,
    batchSize: o.batchSize,
    numClasses: o.numClasses,
    augment,
    scale,
    ratio,
    padding,
    flip: o.flip ?? true,
    photometric,
    jpegQuality,
    shuffle: o.shuffle ?? false,
    seed,
    logger: o.logger ?? silentLogger,
    prefetch,
    dropRemainder: o.dropRemainder ?? false,
  };
}

/**
 * Raw RGB at imageSize × imageSize, plus the part of the augmentation that is cheaper on the way into the
 * float batch than in sharp: the padded-crop shift (dx, dy) and the flip.
 */
interface DecodedImage {
  pixels: Uint8Array;
  dx: number;
  dy: number;
  flip: boolean;
}

async function decodeAndAugment(file: string, config: Config, rng: Rng): Promise<DecodedImage> {
  const input = await fs.readFile(file);
  const { width, height, hasAlpha } = await sharp(input).metadata();
  if (!width || !height) throw new Error('image has no size');
  let image: Sharp;
  if (hasAlpha) {
    // Drop alpha before resizing, as PIL's convert('RGB') does: sharp would otherwise resize premultiplied
    // and round the colours of translucent pixels differently.
    const opaque = await sharp(input)
      .removeAlpha()
      .toColourspace('srgb')
      .raw({ depth: 'uchar' })
      .toBuffer({ resolveWithObject: true });
    image = sharp(opaque.data, { raw: { width: opaque.info.width, height: opaque.info.height, channels: 3 } });
  } else {
    image = sharp(input);
  }
  let dx = 0;
  let dy = 0;
  let flip = false;
  let box: CropBox | null = null;
  // The draws keep their order of old (box or shift, flip, then JPEG, then colours), so that adding a
  // later augmentation leaves the earlier ones' draws as they were.
  if (config.augment === 'resized-crop') {
    box = randomResizedCropBox(width, height, config.scale, config.ratio, rng);
    flip = rng.next() < 0.5;
  } else if (config.augment === 'crop') {
    dx = rng.int(2 * config.padding + 1) - config.padding;
    dy = rng.int(2 * config.padding + 1) - config.padding;
    flip = rng.next() < 0.5;
  } else if (config.augment === 'flip') {
    flip = rng.next() < 0.5;
  }
  flip &&= config.flip;
  image = await jpegJitter(image, config.jpegQuality, rng);
  if (box !== null) image = image.extract(box);
  const { data, info } = await image
    .resize(config.imageSize, config.imageSize, { fit: 'fill', kernel: 'linear' })
    .removeAlpha()
    .toColourspace('srgb')
    .raw({ depth: 'uchar' })
    .toBuffer({ resolveWithObject: true });
  if (info.channels !== 3 || info.width !== config.imageSize || info.height !== config.imageSize) {
    const expected = `${config.imageSize}×${config.imageSize}×3`;
    throw new Error(`decoded to ${info.width}×${info.height}×${info.channels}, expected ${expected}`);
  }
  const pixels = new Uint8Array(data.buffer, data.byteOffset, data.length);
  photometricJitter(pixels, config.photometric, rng);
  return { pixels, dx, dy, flip };
}

// (v / 255 - mean) / std for every byte value and channel: one table lookup per pixel component.
const NORMALISE_LUT: Float32Array = (() => {
  const lut = new Float32Array(256 * 3);
  for (let c = 0; c < 3; c++) {
    for (let v = 0; v < 256; v++) lut[c * 256 + v] = (v / 255 - IMAGENET_MEAN[c]!) / IMAGENET_STD[c]!;
  }
  return lut;
})();

/**
 * Writes one image into the batch. Output (y, x) reads source (y + dy, x' + dx) with x' = x mirrored
 * when flipped — torchvision's order: crop first, then flip. Source pixels outside the image are the
 * zero padding, i.e. black before normalisation, as in torchvision.
 */
function writeNormalised(dst: Float32Array, offset: number, image: DecodedImage, size: number): void {
  const { pixels, dx, dy, flip } = image;
  const zero = [NORMALISE_LUT[0]!, NORMALISE_LUT[256]!, NORMALISE_LUT[512]!];
  let o = offset;
  for (let y = 0; y < size; y++) {
    const sy = y + dy;
    for (let x = 0; x < size; x++) {
      const sx = (flip ? size - 1 - x : x) + dx;
      if (sy < 0 || sy >= size || sx < 0 || sx >= size) {
        dst[o++] = zero[0]!;
        dst[o++] = zero[1]!;
        dst[o++] = zero[2]!;
      } else {
        const i = (sy * size + sx) * 3;
        dst[o++] = NORMALISE_LUT[pixels[i]!]!;
        dst[o++] = NORMALISE_LUT[256 + pixels[i + 1]!]!;
        dst[o++] = NORMALISE_LUT[512 + pixels[i + 2]!]!;
      }
    }
  }
}

function makeBatch(xs: Float32Array, ys: Float32Array, n: number, config: Config): ImageBatch {
  return {
    xs: tf.tensor4d(xs, [n, config.imageSize, config.imageSize, 3], 'float32'),
    ys: tf.tensor2d(ys, [n, config.numClasses], 'float32'),
  };
}
