/**
 * The random parts of training augmentation, each a pure function of the image and a seeded generator so
 * that the same seed gives the same images: torchvision's RandomResizedCrop box, mild photometric jitter
 * (brightness, contrast, saturation) and JPEG re-encoding at a random quality (the artifacts a validation
 * set of JPEG photos shows and a folder of PNGs never does).
 */
import sharp, { type Sharp } from 'sharp';
import type { Rng } from '../util/rng.js';

/** Probability that a training image is re-encoded as JPEG when `jpegQuality` is set. */
export const JPEG_PROBABILITY = 0.5;

export interface CropBox {
  left: number;
  top: number;
  width: number;
  height: number;
}

/** torchvision's `RandomResizedCrop.get_params`: ten tries at a random area and aspect ratio, else a centre crop. */
export function randomResizedCropBox(
  width: number,
  height: number,
  scale: readonly [number, number],
  ratio: readonly [number, number],
  rng: Rng,
): CropBox {
  const area = width * height;
  const logRatio = [Math.log(ratio[0]), Math.log(ratio[1])] as const;
  for (let attempt = 0; attempt < 10; attempt++) {
    const targetArea = area * rng.uniform(scale[0], scale[1]);
    const aspect = Math.exp(rng.uniform(logRatio[0], logRatio[1]));
    const w = Math.round(Math.sqrt(targetArea * aspect));
    const h = Math.round(Math.sqrt(targetArea / aspect));
    if (w > 0 && w <= width && h > 0 && h <= height) {
      return { top: rng.int(height - h + 1), left: rng.int(width - w + 1), width: w, height: h };
    }
  }
  const inRatio = width / height;
  let w = width;
  let h = height;
  if (inRatio < ratio[0]) h = Math.round(w / ratio[0]);
  else if (inRatio > ratio[1]) w = Math.round(h * ratio[1]);
  return { top: Math.floor((height - h) / 2), left: Math.floor((width - w) / 2), width: w, height: h };
}

/**
 * Re-encodes the image as JPEG at a quality drawn from [min, max] with probability JPEG_PROBABILITY; the
 * draws happen whether or not it is applied, so later draws do not depend on this one's outcome.
 */
export async function jpegJitter(image: Sharp, quality: readonly [number, number] | null, rng: Rng): Promise<Sharp> {
  if (quality === null) return image;
  const apply = rng.next() < JPEG_PROBABILITY;
  const q = quality[0] + rng.int(quality[1] - quality[0] + 1);
  if (!apply) return image;
  const encoded = await image.jpeg({ quality: q }).toBuffer();
  return sharp(encoded);
}

/**
 * torchvision's ColorJitter(brightness=s, contrast=s, saturation=s) in a fixed order (brightness, contrast,
 * saturation), on 8-bit RGB in place: each factor uniform in [1 − s, 1 + s]. Contrast blends with the
 * image's mean grey, saturation with each pixel's grey (ITU-R 601 luma, as torchvision).
 */
export function photometricJitter(pixels: Uint8Array, strength: number, rng: Rng): void {
  if (strength <= 0) return;
  const brightness = rng.uniform(1 - strength, 1 + strength);
  const contrast = rng.uniform(1 - strength, 1 + strength);
  const saturation = rng.uniform(1 - strength, 1 + strength);
  const grey = (r: number, g: number, b: number) => 0.299 * r + 0.587 * g + 0.114 * b;
  const clamp = (v: number) => (v < 0 ? 0 : v > 255 ? 255 : v);
  const values = new Float32Array(pixels.length);
  let greySum = 0;
  for (let i = 0; i < pixels.length; i += 3) {
    for (let c = 0; c < 3; c++) values[i + c] = clamp(pixels[i + c]! * brightness);
    greySum += grey(values[i]!, values[i + 1]!, values[i + 2]!);
  }
  const meanGrey = greySum / (pixels.length / 3);
  for (let i = 0; i < pixels.length; i += 3) {
    for (let c = 0; c < 3; c++) values[i + c] = clamp(contrast * values[i + c]! + (1 - contrast) * meanGrey);
    const g = grey(values[i]!, values[i + 1]!, values[i + 2]!);
    for (let c = 0; c < 3; c++) pixels[i + c] = Math.round(clamp(saturation * values[i + c]! + (1 - saturation) * g));
  }
}
