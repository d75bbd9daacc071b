/**
 * The page's data: a synthetic 4-class task drawn with canvas (the idea of src/data/synthetic.ts, which
 * draws with sharp in Node: grey levels where either may be the lighter, random placement and sizes, colour
 * noise on every pixel, so no single pixel or mean colour gives the class away), or images dropped in.
 */

export const SYNTHETIC_CLASSES = ['circle', 'square', 'h-stripes', 'v-stripes'] as const;

/** A labelled set of images in the model's input layout: NHWC float32 in [0, 1]. */
export interface ImageSet {
  size: number;
  classNames: string[];
  pixels: Float32Array;
  labels: Int32Array;
}

/** A small seeded generator (mulberry32): the same seed draws the same validation set on every run. */
export function createRng(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function grey(level: number): string {
  const v = Math.round(level * 255);
  return `rgb(${v},${v},${v})`;
}

/** Draws one image of class `label` into a canvas context of side `size`. */
function drawShape(ctx: CanvasRenderingContext2D, size: number, label: number, rng: () => number): void {
  // Foreground and background at least 0.35 apart, either the lighter: brightness says nothing of the class.
  const a = rng();
  let b = rng();
  while (Math.abs(a - b) < 0.35) b = rng();
  ctx.fillStyle = grey(a);
  ctx.fillRect(0, 0, size, size);
  ctx.fillStyle = grey(b);
  const name = SYNTHETIC_CLASSES[label];
  if (name === 'circle' || name === 'square') {
    const r = size * (0.18 + 0.14 * rng());
    const cx = r + rng() * (size - 2 * r);
    const cy = r + rng() * (size - 2 * r);
    ctx.beginPath();
    if (name === 'circle') ctx.arc(cx, cy, r, 0, 2 * Math.PI);
    else ctx.rect(cx - r, cy - r, 2 * r, 2 * r);
    ctx.fill();
    return;
  }
  const period = Math.max(4, Math.round(size * (0.12 + 0.12 * rng())));
  const phase = Math.floor(rng() * period);
  for (let p = -phase; p < size; p += period) {
    if (name === 'h-stripes') ctx.fillRect(0, p, size, period / 2);
    else ctx.fillRect(p, 0, period / 2, size);
  }
}

/** Draws `count` synthetic images (labels balanced, in random order) of side `size`. */
export function drawSynthetic(count: number, size: number, rng: () => number): ImageSet {
  const canvas = document.createElement('canvas');
  canvas.width = canvas.height = size;
  const ctx = canvas.getContext('2d', { willReadFrequently: true })!;
  const pixels = new Float32Array(count * size * size * 3);
  const labels = new Int32Array(count);
  for (let i = 0; i < count; i++) {
    const label = Math.floor(rng() * SYNTHETIC_CLASSES.length);
    labels[i] = label;
    drawShape(ctx, size, label, rng);
    const rgba = ctx.getImageData(0, 0, size, size).data;
    const base = i * size * size * 3;
    for (let p = 0; p < size * size; p++) {
      for (let c = 0; c < 3; c++) {
        const noise = (rng() - 0.5) * 0.2;
        pixels[base + p * 3 + c] = Math.min(1, Math.max(0, rgba[p * 4 + c] / 255 + noise));
      }
    }
  }
  return { size, classNames: [...SYNTHETIC_CLASSES], pixels, labels };
}

/** One image of a set as RGBA, for drawing it on the page. */
export function imageData(set: ImageSet, index: number): ImageData {
  const { size } = set;
  const out = new ImageData(size, size);
  const base = index * size * size * 3;
  for (let p = 0; p < size * size; p++) {
    for (let c = 0; c < 3; c++) out.data[p * 4 + c] = Math.round(set.pixels[base + p * 3 + c] * 255);
    out.data[p * 4 + 3] = 255;
  }
  return out;
}

/** Picks `count` images at random (with replacement): a training batch from a fixed set of dropped images. */
export function sample(set: ImageSet, count: number, rng: () => number): ImageSet {
  const { size } = set;
  const stride = size * size * 3;
  const pixels = new Float32Array(count * stride);
  const labels = new Int32Array(count);
  for (let i = 0; i < count; i++) {
    const j = Math.floor(rng() * set.labels.length);
    pixels.set(set.pixels.subarray(j * stride, (j + 1) * stride), i * stride);
    labels[i] = set.labels[j];
  }
  return { size, classNames: set.classNames, pixels, labels };
}

/** A file dropped in and the class it belongs to (the name of the folder it was in). */
interface DroppedImage {
  file: File;
  className: string;
}

/** Every image file under the dropped folders; each one's class is the name of its parent folder. */
export async function droppedImages(items: DataTransferItemList): Promise<DroppedImage[]> {
  const found: DroppedImage[] = [];
  const walk = async (entry: FileSystemEntry, parent: string): Promise<void> => {
    if (entry.isFile) {
      const file = await new Promise<File>((resolve, reject) => (entry as FileSystemFileEntry).file(resolve, reject));
      if (/\.(png|jpe?g|webp|gif|bmp)$/i.test(file.name)) found.push({ file, className: parent });
      return;
    }
    const reader = (entry as FileSystemDirectoryEntry).createReader();
    // readEntries returns at most 100 entries a call: read until it returns none.
    for (;;) {
      const batch = await new Promise<FileSystemEntry[]>((resolve, reject) => reader.readEntries(resolve, reject));
      if (batch.length === 0) break;
      for (const child of batch) await walk(child, entry.name);
    }
  };
  const entries = [...items].map((item) => item.webkitGetAsEntry()).filter((e): e is FileSystemEntry => e !== null);
  for (const entry of entries) await walk(entry, '');
  return found.filter((image) => image.className !== '');
}

/** Decodes and resizes dropped images (centre crop to a square) into a set; classes sorted by name. */
export async function loadDropped(images: DroppedImage[], size: number): Promise<ImageSet> {
  const classNames = [...new Set(images.map((image) => image.className))].sort();
  if (classNames.length < 2) throw new Error(`drop a folder with one subfolder per class (at least 2); found ${classNames.length} class(es)`);
  const canvas = document.createElement('canvas');
  canvas.width = canvas.height = size;
  const ctx = canvas.getContext('2d', { willReadFrequently: true })!;
  const pixels = new Float32Array(images.length * size * size * 3);
  const labels = new Int32Array(images.length);
  for (const [i, image] of images.entries()) {
    const bitmap = await createImageBitmap(image.file);
    const side = Math.min(bitmap.width, bitmap.height);
    ctx.drawImage(bitmap, (bitmap.width - side) / 2, (bitmap.height - side) / 2, side, side, 0, 0, size, size);
    bitmap.close();
    const rgba = ctx.getImageData(0, 0, size, size).data;
    for (let p = 0; p < size * size; p++) {
      for (let c = 0; c < 3; c++) pixels[(i * size * size + p) * 3 + c] = rgba[p * 4 + c] / 255;
    }
    labels[i] = classNames.indexOf(image.className);
  }
  return { size, classNames, pixels, labels };
}

/** Splits a set into training and validation parts (every fifth image of a shuffled order to validation). */
export function split(set: ImageSet, rng: () => number): { train: ImageSet; val: ImageSet } {
  const order = [...set.labels.keys()];
  for (let i = order.length - 1; i > 0; i--) {
    const j = Math.floor(rng() * (i + 1));
    [order[i], order[j]] = [order[j], order[i]];
  }
  const pick = (indices: number[]): ImageSet => {
    const stride = set.size * set.size * 3;
    const pixels = new Float32Array(indices.length * stride);
    const labels = new Int32Array(indices.length);
    indices.forEach((j, i) => {
      pixels.set(set.pixels.subarray(j * stride, (j + 1) * stride), i * stride);
      labels[i] = set.labels[j];
    });
    return { size: set.size, classNames: set.classNames, pixels, labels };
  };
  return { train: pick(order.filter((_, i) => i % 5 !== 0)), val: pick(order.filter((_, i) => i % 5 === 0)) };
}
