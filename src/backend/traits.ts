/**
 * What the rest of the library needs to know about a backend, one row per backend: the only place outside
 * backend/ that a backend's name decides anything is here (test/architecture.test.ts refuses a backend-name
 * literal elsewhere in src/, the CLI's argument parsing aside). A new backend is a row here, its set-up in
 * `initBackend` (index.ts), and README's backends section ("Adding a backend").
 */
import * as tf from '@tensorflow/tfjs';

export interface BackendTraits {
  /** Computes values; false for the shape-only `meta` backends, which plan memory. */
  computes: boolean;
  /** The meta backend whose buffer aliasing mirrors this backend's: the one that predicts its memory exactly. */
  plannedOn: 'meta' | 'meta-wasm';
  /**
   * Where a float32 tensor's values can be read in place, without a copy (the batch-norm channel sums read
   * them once, in float64): the wasm heap, the cpu backend's own array, or nowhere (values are read back).
   */
  valuesInPlace: 'wasm-heap' | 'js-array' | null;
  /**
   * How aᵀ·b (a 1×1 convolution's weight gradient) runs: `matmul` where tf.matMul's transposed product is
   * fast (native TensorFlow; webgpu, whose tiled matMul reads the transposed operand, while its filter
   * gradient is untiled), `filter-gradient` where it is slow (wasm's transposeA is 12× its plain product).
   */
  transposedMatMul: 'matmul' | 'filter-gradient';
  /**
   * Data-parallel workers: `compute` where each worker runs its own tfjs on a core (wasm, cpu: one thread
   * each), `memory` where workers' memory is only predicted (meta), null where the backend parallelises
   * inside its kernels (GPUs, native TensorFlow) and one process is the right count.
   */
  workers: 'compute' | 'memory' | null;
  /** A fresh model recomputes by default (on wasm, `layer` trains as fast as naive in a tenth of its memory). */
  recomputeByDefault: boolean;
  /** How the memory the backend itself holds is read after a step (memory/backend-memory.ts); null: only tensors. */
  peakBytes: 'wasm-heap' | 'process-rss' | 'nvidia-smi' | 'webgpu-pool' | null;
  /** The kind of processor whose memory-mode cost factors apply (layers/memory-modes.ts, `cost`). */
  costClass: 'sequential' | 'parallel';
  /** Bytes one instance can hold at most, whatever the machine has (wasm32's 4 GiB heap); null: the machine's memory. */
  heapLimitBytes: number | null;
  /**
   * Where a memory budget must count what the backend itself holds rather than the tensors: the most it holds
   * as a multiple of the whole step's tensor bytes (baseline + step peak). webgpu: its GPU buffer pool, bounded
   * by src/backend/webgpu/pool.ts and checked ≤ 1.15× in test/webgpu.test.ts; planMemory fits this multiple of
   * the meta-measured step into the budget, and max-batch compares the measured backendPeakBytes. null: a
   * budget counts tensor bytes.
   */
  backendPeakFactor: number | null;
  /**
   * Convolutions and matrix products summed in float64 and rounded once (./numerics.ts): `always` where those
   * kernels are also the backend's fastest (cpu: src/backend/cpu), `option` where they cost time and
   * `numerics: 'exact'` chooses them (wasm: src/backend/wasm/exact), null where the backend has none.
   */
  exactSums: 'always' | 'option' | null;
}

/** wasm32 addresses 4 GiB: tfjs-backend-wasm's heap grows to that and no further. */
const WASM_HEAP_LIMIT = 4 * 2 ** 30;

/**
 * The most webgpu's GPU buffers hold, as a multiple of the step's tensor bytes: the pool keeps free bytes
 * ≤ 0.1 × those in use (WEBGPU_POOL_FREE_FRACTION), and in use runs a few percent above the tensors (buffers
 * whose release waits for the queued commands to be submitted, uniforms). Measured 1.05–1.12 on DenseNet-121
 * (docs/gpu.md); the test asserts this bound.
 */
export const WEBGPU_PEAK_FACTOR = 1.15;

/** Every backend the library knows, by tfjs's registered name. */
export const BACKEND_TRAITS = {
  tensorflow: {
    computes: true, plannedOn: 'meta', valuesInPlace: null, transposedMatMul: 'matmul', workers: null,
    recomputeByDefault: false, peakBytes: 'nvidia-smi', costClass: 'parallel', heapLimitBytes: null,
    backendPeakFactor: null, exactSums: null,
  },
  webgpu: {
    computes: true, plannedOn: 'meta', valuesInPlace: null, transposedMatMul: 'matmul', workers: null,
    recomputeByDefault: false, peakBytes: 'webgpu-pool', costClass: 'parallel', heapLimitBytes: null,
    backendPeakFactor: WEBGPU_PEAK_FACTOR, exactSums: null,
  },
  wasm: {
    computes: true, plannedOn: 'meta-wasm', valuesInPlace: 'wasm-heap', transposedMatMul: 'filter-gradient', workers: 'compute',
    recomputeByDefault: true, peakBytes: 'wasm-heap', costClass: 'sequential', heapLimitBytes: WASM_HEAP_LIMIT, backendPeakFactor: null, exactSums: 'option',
  },
  cpu: {
    computes: true, plannedOn: 'meta', valuesInPlace: 'js-array', transposedMatMul: 'filter-gradient', workers: 'compute',
    recomputeByDefault: false, peakBytes: 'process-rss', costClass: 'sequential', heapLimitBytes: null, backendPeakFactor: null, exactSums: 'always',
  },
  meta: {
    computes: false, plannedOn: 'meta', valuesInPlace: null, transposedMatMul: 'filter-gradient', workers: 'memory',
    recomputeByDefault: false, peakBytes: null, costClass: 'sequential', heapLimitBytes: null, backendPeakFactor: null, exactSums: null,
  },
  'meta-wasm': {
    computes: false, plannedOn: 'meta-wasm', valuesInPlace: null, transposedMatMul: 'filter-gradient', workers: 'memory',
    recomputeByDefault: true, peakBytes: null, costClass: 'sequential', heapLimitBytes: WASM_HEAP_LIMIT, backendPeakFactor: null, exactSums: null,
  },
} as const satisfies Record<string, BackendTraits>;

export type KnownBackend = keyof typeof BACKEND_TRAITS;

/**
 * A backend registered by someone else (tfjs-node's under another name, a custom one): assumed to compute
 * with its own fast kernels, planned on `meta`, no workers.
 */
const UNKNOWN_BACKEND: BackendTraits = {
  computes: true, plannedOn: 'meta', valuesInPlace: null, transposedMatMul: 'matmul', workers: null,
  recomputeByDefault: false, peakBytes: null, costClass: 'parallel', heapLimitBytes: null, backendPeakFactor: null,
  exactSums: null,
};

/** The traits of a backend by name; default: the active one. */
export function backendTraits(name: string = tf.getBackend()): BackendTraits {
  return Object.prototype.hasOwnProperty.call(BACKEND_TRAITS, name) ? BACKEND_TRAITS[name as KnownBackend] : UNKNOWN_BACKEND;
}

/** The backends with data-parallel workers that compute, for messages ("wasm or cpu"). */
export function workerBackends(): string[] {
  return Object.entries(BACKEND_TRAITS).filter(([, t]) => t.workers === 'compute').map(([name]) => name);
}
