/**
 * How the convolutions and matrix products of a step sum (issue #23): the one table behind initBackend's
 * `numerics` option, the CLI's `--numerics` and the EFFICIENT_DENSENET_NUMERICS environment variable.
 *
 * A step's error against float64 is dominated by discrete events — ReLU masks decided by float32 rounding —
 * whose frequency scales with the forward's accumulation error. `exact` forms every float32 product exactly
 * in float64, sums in float64 and rounds once, so those kernels' errors are a fraction of PyTorch float32's;
 * it costs time: the wasm kernels run at 1/2–1/4 of XNNPACK's float32 GFLOP/s (scripts/bench-exact-gemm.ts), a
 * DenseNet-121 step about twice as long (scripts/ab-numerics.ts).
 */
import { UsageError } from '../util/errors.js';

export interface NumericsRow {
  /** What a user reads in --help and README. */
  summary: string;
  /** Register the float64-accumulating kernels (Conv2D, its two gradients, BatchMatMul) where a backend has them. */
  exactKernels: boolean;
}

export const NUMERICS = {
  fast: { summary: "the backend's fastest kernels: float32 sums on wasm (XNNPACK, our GEMM); cpu's fastest already sum in float64", exactKernels: false },
  exact: { summary: 'convolutions and matrix products summed in float64, rounded once (wasm; slower)', exactKernels: true },
} as const satisfies Record<string, NumericsRow>;

export type Numerics = keyof typeof NUMERICS;
export const NUMERICS_NAMES = Object.keys(NUMERICS) as Numerics[];
/** The default: `exact` costs far more step time than the ~15% issue #23 allowed (README, "Exact sums"). */
export const DEFAULT_NUMERICS: Numerics = 'fast';
/** The environment variable that picks the numerics when none is given (data-parallel workers inherit it). */
export const NUMERICS_ENV = 'EFFICIENT_DENSENET_NUMERICS';

export function parseNumerics(name: string, source = 'numerics'): Numerics {
  if (!(NUMERICS_NAMES as string[]).includes(name)) {
    throw new UsageError(`${source} must be one of ${NUMERICS_NAMES.join(', ')}; got '${name}'`);
  }
  return name as Numerics;
}
