/** How many data-parallel workers a run gets, from what the caller asked and the backend it runs on. */
import * as os from 'node:os';
import { backendTraits, workerBackends } from '../backend/traits.js';
import { UsageError } from '../util/errors.js';
import { checkWorkerCores } from './admission.js';

/** The `workers` option's values: a count, or 'auto'. */
export type WorkersOption = number | 'auto';

/**
 * The most workers 'auto' may start: one per core on wasm and cpu (tfjs runs them on one thread each, so a
 * machine with N cores otherwise uses one), 1 on native and GPU backends, which parallelise inside their
 * kernels (autoWorkers narrows it by the batch). A count above 1 on those backends is refused.
 */
export function resolveWorkers(requested: WorkersOption | undefined, backend: string): number {
  const parallel = backendTraits(backend).workers === 'compute';
  if (requested === undefined) return 1;
  if (requested === 'auto') return parallel ? Math.max(1, os.availableParallelism()) : 1;
  if (requested > 1 && !parallel) {
    throw new UsageError(
      `workers ${requested} needs the ${workerBackends().join(' or ')} backend (each worker runs its own tfjs on a core); the ${backend} backend parallelises inside its kernels: use workers 1`,
    );
  }
  return requested;
}

/**
 * Refuses more than one worker on a backend that cannot run them (the benchmarks: meta measures workers'
 * memory exactly, wasm and cpu run them), and, where they run, more workers than cores unless
 * allowOversubscribe (admission.ts). On meta nothing starts: any count may be planned for another machine.
 */
export function checkWorkersBackend(workers: number, backend: string, { allowOversubscribe = false } = {}): void {
  if (workers > 1 && backendTraits(backend).workers === null) {
    throw new UsageError(`workers above 1 need the ${workerBackends().join(' or ')} backend (or meta, for memory); the backend is ${backend}`);
  }
  if (backendTraits(backend).workers === 'compute') checkWorkerCores(workers, allowOversubscribe);
}

/**
 * The pixels of input (images × height × width) per worker below which a shard does not pay for its
 * synchronization. A data-parallel step costs a fixed amount F whatever the shard — two barriers per batch norm
 * (242 for DenseNet-121), each waiting out the workers' drift, and the sum of every gradient — while the
 * compute shrinks with the shard. DenseNet-121 `layer` on wasm, 2 quiet cores (README "Every core"): 2 workers
 * give 1.38–1.55× at batch 16 at 112² (100k pixels a worker) but only 1.15× at batch 8 (50k); with one worker
 * at ≈16 µs a pixel and F ≈ 100–400 ms, two break even near 8–30k pixels a worker. 2 × 128² = 32,768 keeps
 * 'auto' on the side where two clearly win (on a loaded machine 64² batch 8, 16k a worker, ran slower on 2).
 */
export const MIN_PIXELS_PER_WORKER = 2 * 128 * 128;

export interface AutoWorkersInput {
  /** The backend the workers would run on. */
  backend: string;
  cores: number;
  batchSize: number;
  imageSize: number;
}

export interface AutoWorkers {
  workers: number;
  /** Why, in words, for the run's log. */
  reason: string;
}

/**
 * 'auto' as a rule (pure: the caller gives the machine): 1 on backends that parallelise inside their kernels;
 * else the most workers, up to one per core and one per image, whose shards each hold at least
 * MIN_PIXELS_PER_WORKER pixels (below that the synchronization costs more than the second core gives);
 * 1 when no count above 1 qualifies. Memory is checked afterwards by the caller, which takes fewer workers
 * when these do not fit (admission.ts).
 */
export function autoWorkers(input: AutoWorkersInput): AutoWorkers {
  const { backend, cores, batchSize, imageSize } = input;
  if (backendTraits(backend).workers !== 'compute') {
    return { workers: 1, reason: `the ${backend} backend parallelises inside its kernels` };
  }
  const pixels = imageSize * imageSize;
  const byShard = Math.floor((batchSize * pixels) / MIN_PIXELS_PER_WORKER);
  const workers = Math.max(1, Math.min(cores, batchSize, byShard));
  const images = (n: number) => `${n} image${n === 1 ? '' : 's'}`;
  const minimum = `${MIN_PIXELS_PER_WORKER.toLocaleString('en-US')} pixels`;
  const limits = `${cores} core${cores === 1 ? '' : 's'}, batch ${batchSize} at ${imageSize}²`;
  if (workers === 1) {
    const why =
      cores === 1 ? 'one core'
      : batchSize === 1 ? 'a batch of one image cannot be split'
      : `${(batchSize * pixels).toLocaleString('en-US')} pixels, under ${minimum} for each of 2 workers: too little to pay for the synchronization`;
    return { workers: 1, reason: `${limits}: ${why}` };
  }
  const shard = Math.ceil(batchSize / workers);
  const why = workers === cores ? 'one per core' : workers === batchSize ? 'one per image' : `each shard at least ${minimum}`;
  return { workers, reason: `${limits}: ${why}, shards of ${images(shard)} or fewer` };
}

/** Checks the option's form: an integer ≥ 1 or 'auto'. */
export function checkWorkers(name: string, value: unknown): WorkersOption | undefined {
  if (value === undefined || value === 'auto') return value;
  if (typeof value === 'number' && Number.isInteger(value) && value >= 1 && value <= 256) return value;
  throw new UsageError(`${name} must be an integer from 1 to 256 or 'auto', got ${typeof value === 'string' ? `'${value}'` : String(value)}`);
}
