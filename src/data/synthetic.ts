import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import sharp from 'sharp';
import { writeFileAtomic } from '../util/atomic.js';
import { UsageError } from '../util/errors.js';
import { createRng, deriveSeed, type Rng } from '../util/rng.js';

/**
 * Two tasks of the same kind (small RGB images, a few balanced classes) that need different features:
 * 'shapes' is about the outline of one object on a noisy background, 'textures' about the orientation or
 * layout of a pattern covering the whole image. Training defaults tuned on one can be checked on the other.
 */
export type SyntheticVariant = 'shapes' | 'textures';

export interface SyntheticImageFolderOptions {
  /** 2 to 6. Default 4. */
  numClasses?: number;
  /** Images per class: per class in train/ when `split`, else per class in total. */
  imagesPerClass: number;
  /** Images per class in val/ when `split`. Default max(1, round(imagesPerClass / 4)). */
  valImagesPerClass?: number;
  /** Side of the square images, 16 to 1024. Default 64. */
  imageSize?: number;
  /** Default 0. Same seed (and options) → byte-identical files. */
  seed?: number;
  /** true: ROOT/train/<class>/ and ROOT/val/<class>/; false: ROOT/<class>/. Default true. */
  split?: boolean;
  /** Default 'shapes'. */
  variant?: SyntheticVariant;
  /** Remove `root` first if it exists and is not empty. Without it a non-empty `root` is an error. */
  overwrite?: boolean;
  /** File format of train/ (or of every image when not split). Default 'png'. */
  trainFormat?: SyntheticFormat;
  /**
   * File format of val/. Default 'png'. 'jpeg' gives the validation set the compression artifacts that a
   * folder of photos has and the PNG training set has not (the usual shift between the two).
   */
  valFormat?: SyntheticFormat;
  /** Quality of 'jpeg' files, 1–100. Default 75. */
  jpegQuality?: number;
  /**
   * Which classes of the variant, by name (e.g. ['hstripes', 'vstripes', 'checker', 'dots']); overrides
   * numClasses. Default: the variant's first numClasses.
   */
  classes?: string[];
}

export type SyntheticFormat = 'png' | 'jpeg';

export interface SyntheticImageFolder {
  /** Sorted, i.e. in label order as scanImageFolder will report them. */
  classNames: string[];
  trainPerClass: number;
  /** 0 when not split. */
  valPerClass: number;
  files: number;
}

const SHAPE_CLASSES = ['circle', 'square', 'triangle', 'cross', 'ring', 'diamond'] as const;
const TEXTURE_CLASSES = ['hstripes', 'vstripes', 'diagonal', 'antidiagonal', 'checker', 'dots'] as const;
const MAX_CLASSES = 6;

/**
 * Draws a small, deterministic image-classification dataset as PNG files. Foreground and background
 * brightness (either may be the lighter), positions, sizes, periods and phases are random and every pixel
 * carries colour noise, so neither one pixel nor the mean colour gives the class away: a model has to learn
 * shape or texture. Why grey levels and not random colours: see `contrastingLevels`.
 */
export async function writeSyntheticImageFolder(
  root: string,
  options: SyntheticImageFolderOptions,
): Promise<SyntheticImageFolder> {
  const {
    numClasses = 4,
    imagesPerClass,
    imageSize = 64,
    seed = 0,
    split = true,
    variant = 'shapes',
    overwrite = false,
    trainFormat = 'png',
    valFormat = 'png',
    jpegQuality = 75,
  } = options;
  for (const [name, format] of [['trainFormat', trainFormat], ['valFormat', valFormat]] as const) {
    if (format !== 'png' && format !== 'jpeg') throw new UsageError(`${name} must be 'png' or 'jpeg', got '${String(format)}'`);
  }
  if (!(Number.isInteger(jpegQuality) && jpegQuality >= 1 && jpegQuality <= 100)) {
    throw new UsageError(`jpegQuality must be an integer from 1 to 100, got ${jpegQuality}`);
  }
  if (!(Number.isInteger(numClasses) && numClasses >= 2 && numClasses <= MAX_CLASSES)) {
    throw new UsageError(`numClasses must be an integer from 2 to ${MAX_CLASSES}, got ${numClasses}`);
  }
  if (!(Number.isInteger(imagesPerClass) && imagesPerClass >= 1)) {
    throw new UsageError(`imagesPerClass must be a positive integer, got ${imagesPerClass}`);
  }
  const valPerClass = split ? (options.valImagesPerClass ?? Math.max(1, Math.round(imagesPerClass / 4))) : 0;
  if (split && !(Number.isInteger(valPerClass) && valPerClass >= 1)) {
    throw new UsageError(`valImagesPerClass must be a positive integer, got ${options.valImagesPerClass}`);
  }
  if (!(Number.isInteger(imageSize) && imageSize >= 16 && imageSize <= 1024)) {
    throw new UsageError(`imageSize must be an integer from 16 to 1024, got ${imageSize}`);
  }
  if (variant !== 'shapes' && variant !== 'textures') {
    throw new UsageError(`variant must be 'shapes' or 'textures', got '${String(variant)}'`);
  }
  if (!Number.isFinite(seed)) throw new UsageError(`seed must be a finite number, got ${seed}`);

  const existing = await fs.readdir(root).catch((error: NodeJS.ErrnoException) => {
    if (error.code === 'ENOENT') return [];
    throw new UsageError(`cannot use ${root} as the dataset folder: ${error.message}`);
  });
  if (existing.length > 0) {
    if (!overwrite) throw new UsageError(`dataset folder ${root} is not empty; pass overwrite: true to replace it`);
    await fs.rm(root, { recursive: true, force: true });
  }

  const all: readonly string[] = variant === 'shapes' ? SHAPE_CLASSES : TEXTURE_CLASSES;
  if (options.classes !== undefined) {
    const unknown = options.classes.filter((c) => !all.includes(c));
    if (unknown.length > 0 || options.classes.length < 2 || new Set(options.classes).size !== options.classes.length) {
      throw new UsageError(`classes must be at least 2 distinct names of ${variant}: ${all.join(', ')}; got ${JSON.stringify(options.classes)}`);
    }
  }
  const kinds = options.classes ?? all.slice(0, numClasses);
  const splits: { dir: string; count: number; index: number; format: SyntheticFormat }[] = split
    ? [
        { dir: path.join(root, 'train'), count: imagesPerClass, index: 0, format: trainFormat },
        { dir: path.join(root, 'val'), count: valPerClass, index: 1, format: valFormat },
      ]
    : [{ dir: root, count: imagesPerClass, index: 0, format: trainFormat }];

  const jobs: { file: string; kind: string; seed: number; format: SyntheticFormat }[] = [];
  for (const s of splits) {
    kinds.forEach((kind, classIndex) => {
      for (let i = 0; i < s.count; i++) {
        jobs.push({
          file: path.join(s.dir, kind, `${kind}_${String(i).padStart(5, '0')}.${s.format === 'png' ? 'png' : 'jpg'}`),
          kind,
          format: s.format,
          // Per-image streams: an image does not depend on how many images came before it.
          seed: deriveSeed(seed, s.index, classIndex, i),
        });
      }
    });
  }

  // A few images in flight keeps sharp's thread pool busy without holding every PNG in memory.
  const inFlight = 8;
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < jobs.length) {
      const job = jobs[next++]!;
      const pixels = drawImage(variant, job.kind, imageSize, createRng(job.seed));
      const raw = sharp(pixels, { raw: { width: imageSize, height: imageSize, channels: 3 } });
      const encoded = job.format === 'png' ? await raw.png({ compressionLevel: 6, adaptiveFiltering: false }).toBuffer() : await raw.jpeg({ quality: jpegQuality }).toBuffer();
      await writeFileAtomic(job.file, encoded);
    }
  };
  await Promise.all(Array.from({ length: inFlight }, worker));

  return { classNames: [...kinds].sort(), trainPerClass: imagesPerClass, valPerClass, files: jobs.length };
}

/** The least difference between the foreground's and the background's grey level (of 255). */
const MIN_CONTRAST = 80;

/**
 * Background and foreground grey levels at least MIN_CONTRAST apart, each order equally possible.
 *
 * Grey, not a random colour pair per image, for two measured reasons. (1) A random RGB pair is a
 * fingerprint of the image: with 100 images per class, a DenseNet from scratch learned the 400 training images
 * by their colours instead of the shapes (shapes task, PNG validation, no augmentation: 34% validation accuracy
 * with random colours, 95% with grey levels, 43% with a random tint shared by both; DenseNet-121 with the
 * small-data recipe: ~30% against 95%). (2) A contrast carried by colour alone is what JPEG stores at half
 * resolution (4:2:0 chroma), so at 32² a JPEG validation set loses the edges and stripes its PNG training set
 * shows (textures, random colours: 96% validation on PNG, 65% on JPEG). A brightness contrast survives JPEG,
 * as it does in photos, where objects differ from their background in more than hue.
 */
function contrastingLevels(rng: Rng): [number, number] {
  const background = rng.int(256);
  // The levels far enough from the background: [0, background − C] and [background + C, 255].
  const below = Math.max(0, background - MIN_CONTRAST + 1);
  const above = Math.max(0, 256 - background - MIN_CONTRAST);
  const k = rng.int(below + above);
  return [background, k < below ? k : background + MIN_CONTRAST + (k - below)];
}

/** Raw RGB, row-major, size × size × 3. */
export function drawImage(variant: SyntheticVariant, kind: string, size: number, rng: Rng): Uint8Array {
  const [background, foreground] = contrastingLevels(rng);
  const noise = 12 + rng.int(24);
  const inside = variant === 'shapes' ? shapeMask(kind, size, rng) : textureMask(kind, size, rng);
  const out = new Uint8Array(size * size * 3);
  for (let y = 0; y < size; y++) {
    for (let x = 0; x < size; x++) {
      const level = inside(x + 0.5, y + 0.5) ? foreground : background;
      const o = (y * size + x) * 3;
      // Noise drawn per channel: the pixels are not grey, only the two levels are.
      for (let c = 0; c < 3; c++) {
        const v = level + rng.int(2 * noise + 1) - noise;
        out[o + c] = v < 0 ? 0 : v > 255 ? 255 : v;
      }
    }
  }
  return out;
}

type Mask = (x: number, y: number) => boolean;

function shapeMask(kind: string, size: number, rng: Rng): Mask {
  // Radii overlap between classes and the shapes have similar areas, so size says little about the class.
  const r = size * rng.uniform(0.16, 0.34);
  const cx = rng.uniform(r + 1, size - r - 1);
  const cy = rng.uniform(r + 1, size - r - 1);
  const arm = r * rng.uniform(0.25, 0.4);
  switch (kind) {
    case 'circle':
      return (x, y) => (x - cx) ** 2 + (y - cy) ** 2 <= r * r;
    case 'square': {
      const h = 0.87 * r;
      return (x, y) => Math.abs(x - cx) <= h && Math.abs(y - cy) <= h;
    }
    case 'triangle':
      // Apex up, base at the bottom of the bounding box.
      return (x, y) => {
        const dy = y - cy;
        return dy >= -r && dy <= r && Math.abs(x - cx) <= ((dy + r) / 2) * 1.05;
      };
    case 'cross':
      return (x, y) => {
        const dx = Math.abs(x - cx);
        const dy = Math.abs(y - cy);
        return (dx <= arm && dy <= r) || (dy <= arm && dx <= r);
      };
    case 'ring': {
      const inner = r * rng.uniform(0.45, 0.65);
      return (x, y) => {
        const d2 = (x - cx) ** 2 + (y - cy) ** 2;
        return d2 <= r * r && d2 >= inner * inner;
      };
    }
    case 'diamond':
      return (x, y) => Math.abs(x - cx) + Math.abs(y - cy) <= 1.15 * r;
    default:
      throw new Error(`unknown shape class '${kind}'`);
  }
}

function textureMask(kind: string, size: number, rng: Rng): Mask {
  const period = size * rng.uniform(1 / 12, 1 / 5);
  const phaseX = rng.uniform(0, period);
  const phaseY = rng.uniform(0, period);
  const band = (v: number): boolean => ((v % period) + period) % period < period / 2;
  switch (kind) {
    case 'hstripes':
      return (_x, y) => band(y + phaseY);
    case 'vstripes':
      return (x) => band(x + phaseX);
    case 'diagonal':
      // Divided by √2 so the stripe period across the stripes matches the axis-aligned classes.
      return (x, y) => band((x + y) / Math.SQRT2 + phaseX);
    case 'antidiagonal':
      return (x, y) => band((x - y) / Math.SQRT2 + phaseX);
    case 'checker':
      return (x, y) => band(x + phaseX) !== band(y + phaseY);
    case 'dots': {
      // Radius chosen so dots cover about as much of the image as the other patterns do.
      const radius = period * 0.4;
      return (x, y) => {
        const dx = ((((x + phaseX) % period) + period) % period) - period / 2;
        const dy = ((((y + phaseY) % period) + period) % period) - period / 2;
        return dx * dx + dy * dy <= radius * radius;
      };
    }
    default:
      throw new Error(`unknown texture class '${kind}'`);
  }
}
