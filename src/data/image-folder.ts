import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { UsageError } from '../util/errors.js';
import { type Logger, silentLogger } from '../util/logger.js';
import { createRng, shuffleInPlace } from '../util/rng.js';

/** One labelled image file. `label` indexes the `classNames` that came with it. */
export interface Sample {
  path: string;
  label: number;
}

export interface ScanImageFolderOptions {
  /**
   * Fraction of each class held out for validation when the folder is not already split
   * (`ROOT/<class>/*`). Must lie in (0, 1). Default 0.2. Ignored (with an info message) for a folder
   * that already has `train/` and `val/`.
   */
  valSplit?: number;
  /** Seed of the shuffle that picks the validation images. Default 0. */
  seed?: number;
  /** When given, the number of class folders must equal it (catches pointing at the wrong folder). */
  numClasses?: number;
  logger?: Logger;
}

export interface ImageFolder {
  /** Sorted by code point, as torchvision's ImageFolder sorts them, so label i means the same in both. */
  classNames: string[];
  /** Sorted by label, then path: deterministic, and the data pipeline shuffles anyway. */
  train: Sample[];
  val: Sample[];
  /** Files under the scanned folders that are not images by extension. */
  ignoredFiles: number;
}

export const IMAGE_EXTENSIONS: readonly string[] = ['.jpg', '.jpeg', '.png', '.webp'];

export function isImageFile(file: string): boolean {
  return IMAGE_EXTENSIONS.includes(path.extname(file).toLowerCase());
}

/**
 * Scans an image-classification folder. Two layouts:
 * - `ROOT/train/<class>/*` and `ROOT/val/<class>/*` (used as is; both must hold the same classes);
 * - `ROOT/<class>/*`, split per class (stratified) into train/val by `valSplit` with a seeded shuffle.
 * The first layout is chosen whenever `ROOT/train` is a folder. Images are found recursively inside
 * each class folder (as torchvision does); hidden folders (`.name`, e.g. `.ipynb_checkpoints`) are skipped.
 */
export async function scanImageFolder(root: string, options: ScanImageFolderOptions = {}): Promise<ImageFolder> {
  const { seed = 0, numClasses, logger = silentLogger } = options;
  if (numClasses !== undefined && !(Number.isInteger(numClasses) && numClasses >= 1)) {
    throw new UsageError(`numClasses must be a positive integer, got ${numClasses}`);
  }
  if (options.valSplit !== undefined && !(options.valSplit > 0 && options.valSplit < 1)) {
    throw new UsageError(`valSplit must lie strictly between 0 and 1, got ${options.valSplit}`);
  }
  await requireDirectory(root, 'image folder');

  const trainDir = path.join(root, 'train');
  if (await isDirectory(trainDir)) {
    const valDir = path.join(root, 'val');
    if (!(await isDirectory(valDir))) {
      throw new UsageError(`image folder ${root} has train/ but no val/ folder; add ${valDir} or use the ROOT/<class>/ layout with valSplit`);
    }
    if (options.valSplit !== undefined) {
      logger.info(`${root} is already split into train/ and val/; valSplit ${options.valSplit} is not used`);
    }
    const train = await scanSplit(trainDir);
    const val = await scanSplit(valDir);
    const missingInVal = train.classNames.filter((c) => !val.classNames.includes(c));
    const missingInTrain = val.classNames.filter((c) => !train.classNames.includes(c));
    if (missingInVal.length > 0 || missingInTrain.length > 0) {
      const parts: string[] = [];
      if (missingInVal.length > 0) parts.push(`only in ${trainDir}: ${missingInVal.join(', ')}`);
      if (missingInTrain.length > 0) parts.push(`only in ${valDir}: ${missingInTrain.join(', ')}`);
      throw new UsageError(`train and val must hold the same class folders (${parts.join('; ')})`);
    }
    checkNumClasses(root, train.classNames.length, numClasses);
    return {
      classNames: train.classNames,
      train: toSamples(train.files),
      val: toSamples(val.files),
      ignoredFiles: train.ignored + val.ignored,
    };
  }

  const valSplit = options.valSplit ?? 0.2;
  const scanned = await scanSplit(root);
  checkNumClasses(root, scanned.classNames.length, numClasses);
  const rng = createRng(seed);
  const trainFiles: string[][] = [];
  const valFiles: string[][] = [];
  scanned.files.forEach((files, label) => {
    const className = scanned.classNames[label]!;
    const nVal = Math.round(files.length * valSplit);
    if (nVal === 0 || nVal === files.length) {
      throw new UsageError(
        `valSplit ${valSplit} leaves class '${className}' (${files.length} images in ${path.join(root, className)}) ` +
          `with no ${nVal === 0 ? 'validation' : 'training'} images; add images or change valSplit`,
      );
    }
    const shuffled = shuffleInPlace([...files], rng);
    valFiles.push(shuffled.slice(0, nVal).sort());
    trainFiles.push(shuffled.slice(nVal).sort());
  });
  return {
    classNames: scanned.classNames,
    train: toSamples(trainFiles),
    val: toSamples(valFiles),
    ignoredFiles: scanned.ignored,
  };
}

interface ScannedSplit {
  classNames: string[];
  /** files[label] = sorted image paths of that class. */
  files: string[][];
  ignored: number;
}

async function scanSplit(dir: string): Promise<ScannedSplit> {
  const entries = await fs.readdir(dir, { withFileTypes: true });
  const classNames: string[] = [];
  let ignored = 0;
  for (const entry of entries) {
    if (entry.name.startsWith('.')) {
      if (!entry.isDirectory()) ignored++;
      continue;
    }
    const full = path.join(dir, entry.name);
    // Stat rather than trust the dirent, so symlinked class folders count as folders.
    if (await isDirectory(full)) classNames.push(entry.name);
    else ignored++;
  }
  if (classNames.length === 0) {
    throw new UsageError(`image folder ${dir} has no class subfolders; expected ${dir}/<class>/<image> files`);
  }
  // Code-point order, like Python's sorted(), so labels agree with torchvision's ImageFolder.
  classNames.sort();
  const files: string[][] = [];
  for (const className of classNames) {
    const classDir = path.join(dir, className);
    const found = await listFilesRecursive(classDir);
    const images = found.filter(isImageFile).sort();
    ignored += found.length - images.length;
    if (images.length === 0) {
      throw new UsageError(
        `class folder ${classDir} holds no images (${IMAGE_EXTENSIONS.join(' ')})` +
          (found.length > 0 ? `; it has ${found.length} other file(s)` : ''),
      );
    }
    files.push(images);
  }
  return { classNames, files, ignored };
}

async function listFilesRecursive(dir: string): Promise<string[]> {
  const out: string[] = [];
  const entries = await fs.readdir(dir, { withFileTypes: true });
  for (const entry of entries) {
    const full = path.join(dir, entry.name);
    const stat = await fs.stat(full).catch(() => undefined);
    if (stat === undefined) continue; // dangling symlink
    if (stat.isDirectory()) {
      if (!entry.name.startsWith('.')) out.push(...(await listFilesRecursive(full)));
    } else if (stat.isFile()) {
      out.push(full);
    }
  }
  return out;
}

function toSamples(files: string[][]): Sample[] {
  return files.flatMap((paths, label) => paths.map((p) => ({ path: p, label })));
}

function checkNumClasses(root: string, found: number, expected: number | undefined): void {
  if (expected !== undefined && expected !== found) {
    throw new UsageError(`numClasses is ${expected} but image folder ${root} has ${found} class folders`);
  }
}

async function isDirectory(p: string): Promise<boolean> {
  const stat = await fs.stat(p).catch(() => undefined);
  return stat?.isDirectory() ?? false;
}

async function requireDirectory(p: string, what: string): Promise<void> {
  const stat = await fs.stat(p).catch(() => undefined);
  if (stat === undefined) throw new UsageError(`${what} ${p} does not exist`);
  if (!stat.isDirectory()) throw new UsageError(`${what} ${p} is not a folder`);
}

/** Every image of a `DIR/<class>/*` folder, labelled by its sorted class folders (no split): what evaluation reads. */
export async function scanLabelledImages(dir: string): Promise<{ classNames: string[]; samples: Sample[]; ignoredFiles: number }> {
  await requireDirectory(dir, 'image folder');
  const split = await scanSplit(dir);
  return { classNames: split.classNames, samples: toSamples(split.files), ignoredFiles: split.ignored };
}
