/**
 * The largest batch whose training step fits a memory budget. Peak memory is affine in the batch size for a
 * fixed model (weights and optimizer state, plus per-image activations), so the search starts from the
 * straight line through batches 1 and 2, then brackets and bisects with real measurements — exact even where
 * the line is only approximately right.
 */
import type { BenchResult } from './benchmark.js';

export interface MaxBatchOptions {
  /** Bytes the whole step may use: weights, optimizer state, batch and the step's peak. */
  budgetBytes: number;
  /** Measures one batch size; returns null when that configuration fails (crash, out of memory). */
  measure: (batch: number) => Promise<BenchResult>;
  /** Upper limit of the search. */
  maxBatch?: number;
  onProbe?: (batch: number, peakBytes: number | null, fits: boolean) => void;
}

export interface MaxBatchResult {
  /** 0 when not even batch 1 fits. */
  batch: number;
  /** Peak bytes at that batch. */
  peakBytes: number | null;
  /** Every measurement made: batch → peak bytes (null: failed). */
  probes: Array<{ batch: number; peakBytes: number | null; fits: boolean }>;
}

export async function findMaxBatch(options: MaxBatchOptions): Promise<MaxBatchResult> {
  const limit = options.maxBatch ?? 1 << 16;
  const probes: MaxBatchResult['probes'] = [];
  const cache = new Map<number, number | null>();
  const probe = async (batch: number): Promise<boolean> => {
    if (!cache.has(batch)) {
      const result = await options.measure(batch);
      const peak = result.error ? null : result.peakBytes;
      cache.set(batch, peak);
      const fits = peak !== null && peak <= options.budgetBytes;
      probes.push({ batch, peakBytes: peak, fits });
      options.onProbe?.(batch, peak, fits);
    }
    const peak = cache.get(batch) ?? null;
    return peak !== null && peak <= options.budgetBytes;
  };
  if (!(await probe(1))) return { batch: 0, peakBytes: cache.get(1) ?? null, probes };
  let lo = 1; // fits
  let hi: number; // does not fit (or limit + 1)
  if (limit >= 2 && (await probe(2))) {
    lo = 2;
    const [p1, p2] = [cache.get(1)!, cache.get(2)!];
    const slope = Math.max(p2 - p1, 1);
    const guess = Math.min(limit, Math.max(2, Math.floor(2 + (options.budgetBytes - p2) / slope)));
    if (await probe(guess)) {
      lo = guess;
      hi = guess + 1;
      while (hi <= limit && (await probe(hi))) {
        lo = hi;
        hi = Math.min(limit + 1, lo + Math.max(1, (hi - guess) * 2));
      }
    } else {
      hi = guess;
    }
  } else {
    hi = 2;
  }
  while (hi - lo > 1) {
    const mid = Math.floor((lo + hi) / 2);
    if (await probe(mid)) lo = mid;
    else hi = mid;
  }
  return { batch: lo, peakBytes: cache.get(lo) ?? null, probes };
}

