/**
 * Seeded randomness for everything that must repeat exactly: the folder's train/val split, shuffling,
 * augmentation, synthetic data and dropout masks. Streams are derived from (seed, purpose, index) so that
 * a result never depends on the order in which work happens.
 */
import { UsageError } from './errors.js';

/** A small seeded PRNG shared by the data side of training (image-folder split, augmentation, synthetic data). */
export interface Rng {
  /** Uniform in [0, 1). */
  next(): number;
  /** Uniform integer in [0, n). */
  int(n: number): number;
  /** Uniform in [lo, hi). */
  uniform(lo: number, hi: number): number;
  /** A fresh 32-bit value, used to seed an independent child generator. */
  uint32(): number;
}

/**
 * mulberry32 behind a splitmix32-style seed scramble, so that neighbouring seeds (0, 1, 2, ...) give
 * unrelated streams. Any finite number is accepted as a seed; only its integer part modulo 2^32 matters.
 */
export function createRng(seed: number): Rng {
  if (!Number.isFinite(seed)) throw new UsageError(`seed must be a finite number, got ${seed}`);
  let s = mix32(Math.trunc(seed) >>> 0);
  const uint32 = (): number => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return (t ^ (t >>> 14)) >>> 0;
  };
  const next = (): number => uint32() / 4294967296;
  return {
    next,
    uint32,
    int: (n) => Math.floor(next() * n),
    uniform: (lo, hi) => lo + (hi - lo) * next(),
  };
}

/** Combines integers into one well-mixed 32-bit seed (for per-epoch or per-item streams). */
export function deriveSeed(...parts: number[]): number {
  let h = 0x9e3779b9;
  for (const part of parts) h = mix32((h ^ mix32(Math.trunc(part) >>> 0)) >>> 0);
  return h;
}

function mix32(x: number): number {
  let z = (x + 0x9e3779b9) >>> 0;
  z = Math.imul(z ^ (z >>> 16), 0x85ebca6b) >>> 0;
  z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35) >>> 0;
  return (z ^ (z >>> 16)) >>> 0;
}

/** Fisher–Yates with the given generator. */
export function shuffleInPlace<T>(items: T[], rng: Rng): T[] {
  for (let i = items.length - 1; i > 0; i--) {
    const j = rng.int(i + 1);
    const tmp = items[i]!;
    items[i] = items[j]!;
    items[j] = tmp;
  }
  return items;
}
