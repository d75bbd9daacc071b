/**
 * Seeded dropout masks. A mask never comes from tfjs's unseeded generator: each sample's mask derives from
 * (run seed, step, layer key, global sample index), so that
 * - the same seed gives the same run, and a resumed run the same masks as an uninterrupted one;
 * - every memory mode draws the same mask (the naive layer, the recomputing layer op and the block op all
 *   call dropoutMask with the same layer key; the recomputing backward reuses the forward's saved mask);
 * - a data-parallel split of a batch gives each sample the mask it would get in the whole batch
 *   (`sampleOffset` is the index of a worker's first sample in the global batch).
 *
 * The trainer sets the context around each step's forward (withDropoutContext). Outside any context
 * (a caller's own training loop, the benchmarks) masks still come from seeded streams: seed 0 and a
 * process-wide counter as the step, so successive forwards differ and a process repeats itself.
 */
import * as tf from '@tensorflow/tfjs';
import { createRng, deriveSeed } from '../util/rng.js';

/** Dropout applied to a layer's new features during training, or none. */
export interface DropoutSpec {
  rate: number;
  /** Names the layer in the mask's derivation; layers with the same key draw the same masks. */
  key?: string;
  /** Overrides the context's stream (tests). */
  seed?: number;
}

/** A block's dropout: one spec per layer (each with its own mask key), or one for every layer. */
export type BlockDropout = DropoutSpec | readonly DropoutSpec[];

/** The spec of each of a block's `count` layers (undefined: no dropout). */
export function perLayerDropout(count: number, dropout: BlockDropout | undefined): Array<DropoutSpec | undefined> {
  return Array.from({ length: count }, (_, l) => (Array.isArray(dropout) ? (dropout as readonly DropoutSpec[])[l] : (dropout as DropoutSpec | undefined)));
}

/** Which step a forward belongs to. */
export interface DropoutContext {
  seed: number;
  /** Any integers that identify the step, e.g. [epoch, batch]. */
  step: readonly number[];
  /** Index in the global batch of this batch's first sample. Default 0. */
  sampleOffset?: number;
}

let current: DropoutContext | null = null;
let unscopedCalls = 0;

/** Runs `fn` (a synchronous forward, or a whole training step) with masks derived from `context`. */
export function withDropoutContext<T>(context: DropoutContext, fn: () => T): T {
  const previous = current;
  current = context;
  try {
    return fn();
  } finally {
    current = previous;
  }
}

/** A 32-bit hash of a layer key (FNV-1a), so that keys, not positions, identify layers. */
function keyHash(key: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < key.length; i++) {
    h ^= key.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h;
}

/**
 * A dropout mask for NHWC `shape`, scaled by 1/(1 − rate): each element is 0 with probability `rate`.
 * Sample i of the batch draws from the stream (seed, step…, key, sampleOffset + i).
 */
export function dropoutMask(shape: number[], spec: DropoutSpec): tf.Tensor {
  const context: DropoutContext = current ?? { seed: 0, step: [0x5eed, unscopedCalls++] };
  const seed = spec.seed ?? context.seed;
  const stepSeed = deriveSeed(seed, ...context.step);
  const layer = keyHash(spec.key ?? '');
  const n = shape[0]!;
  const perSample = shape.slice(1).reduce((a, b) => a * b, 1);
  const keep = Math.fround(1 / Math.fround(1 - spec.rate));
  // uint32 < rate·2^32 ⇔ uniform < rate: the element is dropped.
  const threshold = spec.rate * 4294967296;
  const values = new Float32Array(n * perSample);
  const offset = context.sampleOffset ?? 0;
  for (let i = 0; i < n; i++) {
    const rng = createRng(deriveSeed(stepSeed, layer, offset + i));
    const base = i * perSample;
    for (let j = 0; j < perSample; j++) values[base + j] = rng.uint32() < threshold ? 0 : keep;
  }
  return tf.tensor(values, shape, 'float32');
}
