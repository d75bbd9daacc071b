/**
 * What a data-parallel run may start, decided before any worker thread exists: a worker is a whole Node
 * isolate with its own tfjs and a replica of the model, so a count that cannot help (more workers than
 * images in a batch, more than the machine's cores) or cannot fit (the machine's free memory, the wasm heap)
 * must be caught here, not after minutes of swapping.
 *
 * - more workers than images in a batch: capped to the batch, with one log line (N workers train the same
 *   function whatever N, so the cap changes no result, only the memory and threads spent);
 * - more workers than cores: refused unless allowOversubscribe (workers sharing a core add memory and waiting
 *   at every barrier, never speed);
 * - memory: every worker's replica and shard (exact, measured on the meta backend from the model's topology),
 *   its runtime, and the main thread's model of record, against the machine's free memory; each worker's step
 *   against its backend's heap limit (4 GiB on wasm). A run that cannot fit is refused with the figures and
 *   the largest worker count that fits.
 */
import * as os from 'node:os';
import * as tf from '@tensorflow/tfjs';
import { backendTraits } from '../backend/traits.js';
import { measureTrainingStep } from '../memory/measure.js';
import { onMeta } from '../memory/plan.js';
import { MEASURING_OPTIMIZER } from '../step/step.js';
import type { OptimizerSettings } from '../step/optimizers.js';
import { UsageError } from '../util/errors.js';
import { formatMiB, formatSize } from '../util/format.js';
import type { Logger } from '../util/logger.js';

/** The machine as the checks see it; tests replace these functions to play a smaller machine. */
export const machine = {
  cores: (): number => os.availableParallelism(),
  /** What the OS can hand out now (Linux: MemAvailable). */
  freeMemoryBytes: (): number => os.freemem(),
};

/**
 * Resident memory of one worker before its model: a Node isolate, its own tfjs and backend module. Measured
 * 114–139 MiB per worker (1, 2 and 4 workers on wasm, a tiny model, running from source under tsx).
 */
export const WORKER_RUNTIME_BYTES = 128 * 2 ** 20;

export interface WorkerCountOptions {
  /** Workers asked for (already resolved from 'auto'). */
  workers: number;
  /** Images per step, split among the workers. */
  batchSize: number;
  allowOversubscribe?: boolean;
  /** Receives the one line saying the count was capped. */
  logger?: Logger;
}

/** The worker count a run starts with: capped to the batch, refused above the cores (see the file comment). */
export function admitWorkerCount(options: WorkerCountOptions): number {
  const { workers, batchSize } = options;
  const capped = Math.min(workers, batchSize);
  if (capped < workers) {
    options.logger?.info(`workers ${workers} capped to ${capped}: a batch of ${batchSize} gives each worker at least one image; more would hold a replica and train nothing (same result)`);
  }
  checkWorkerCores(capped, options.allowOversubscribe ?? false, capped < workers ? `${workers} workers (${capped} once capped to the batch of ${batchSize})` : undefined);
  return capped;
}

/** Refuses more workers than the machine has cores unless the caller insists; `asked` names them in the message. */
export function checkWorkerCores(workers: number, allowOversubscribe: boolean, asked = `${workers} workers`): void {
  const cores = machine.cores();
  if (workers <= cores || allowOversubscribe) return;
  throw new UsageError(
    `${asked} are more than this machine's ${cores} cores: workers sharing a core add memory and waiting at every barrier, not speed; ` +
      `use at most ${cores} ('auto' starts at most one per core), or allowOversubscribe: true (--allow-oversubscribe) to run them anyway`,
  );
}

/**
 * The main thread's copy of a model under data parallelism: float32 weights and, for snapshots, the
 * optimizer's state per trained one (SGD: momentum; Adam: two moments).
 */
export function modelOfRecordBytes(model: tf.LayersModel, optimizer: OptimizerSettings = MEASURING_OPTIMIZER): number {
  const count = (weights: tf.LayerVariable[]) => weights.reduce((n, w) => n + w.shape.reduce((a: number, b) => a * (b ?? 1), 1), 0);
  const slots = optimizer.name === 'adam' ? 2 : 1;
  return 4 * (count(model.weights) + slots * count(model.trainableWeights));
}

export interface WorkerMemoryFit {
  workers: number;
  batchSize: number;
  /** One worker's step, a replica and the largest shard: weights, optimizer state, shard and the step's peak. */
  stepBytes: (shard: number) => Promise<number>;
  /** The main thread's model of record. */
  recordBytes: number;
  freeBytes: number;
  /** The most one worker's backend can hold; null: no limit but the machine's. */
  heapLimitBytes: number | null;
  /** Names the measurement in messages, e.g. 'exact on meta-wasm'. */
  measuredOn?: string;
}

export interface WorkerMemoryNeed {
  workers: number;
  shard: number;
  stepBytes: number;
  /** stepBytes + WORKER_RUNTIME_BYTES. */
  perWorkerBytes: number;
  recordBytes: number;
  /** Every worker and the model of record. */
  totalBytes: number;
}

/** A measured need, rounded up: the figure is a minimum (sizes the caller gave go through formatSize). */
const size = (bytes: number): string => formatMiB(bytes, { round: 'up' });

/**
 * Checks that `workers` workers fit; returns their need, or throws a UsageError with the figures and the
 * largest worker count (≥ 2) that fits. The step is measured once per distinct shard size.
 */
export async function fitWorkerMemory(fit: WorkerMemoryFit): Promise<WorkerMemoryNeed> {
  const cache = new Map<number, number>();
  const needOf = async (workers: number): Promise<WorkerMemoryNeed> => {
    const shard = Math.ceil(fit.batchSize / workers);
    if (!cache.has(shard)) cache.set(shard, await fit.stepBytes(shard));
    const stepBytes = cache.get(shard)!;
    const perWorkerBytes = stepBytes + WORKER_RUNTIME_BYTES;
    return { workers, shard, stepBytes, perWorkerBytes, recordBytes: fit.recordBytes, totalBytes: workers * perWorkerBytes + fit.recordBytes };
  };
  const fits = (need: WorkerMemoryNeed) => need.totalBytes <= fit.freeBytes && (fit.heapLimitBytes === null || need.stepBytes <= fit.heapLimitBytes);
  const need = await needOf(fit.workers);
  if (fits(need)) return need;
  const overHeap = fit.heapLimitBytes !== null && need.stepBytes > fit.heapLimitBytes;
  let largest = 0;
  for (let n = fit.workers - 1; n >= 2 && largest === 0 && !overHeap; n--) if (fits(await needOf(n))) largest = n;
  const figures =
    `${fit.workers} workers need ${size(need.totalBytes)} (each ${size(need.perWorkerBytes)}: its replica and a shard of ${need.shard} image${need.shard === 1 ? '' : 's'}, ${size(need.stepBytes)}` +
    `${fit.measuredOn ? `, ${fit.measuredOn}` : ''}, its own Node and tfjs ≈${formatSize(WORKER_RUNTIME_BYTES)}; the main thread's model ${size(need.recordBytes)})`;
  const why = overHeap
    ? `a worker's step (${size(need.stepBytes)}) is over its backend's ${formatSize(fit.heapLimitBytes!)} heap`
    : `only ${formatMiB(fit.freeBytes)} of memory is free`;
  // Fewer workers mean larger shards: over the heap, only more workers (or less per image) can help.
  const advice = overHeap
    ? 'use more workers (smaller shards) if memory allows'
    : largest >= 2
      ? `at most ${largest} workers fit`
      : `${fit.workers === 2 ? 'not even 2 workers fit' : `no count from 2 to ${fit.workers} fits`}: use workers 1 (this thread)`;
  throw new UsageError(`${figures}, but ${why}; ${advice}, or use a smaller batch or a leaner memory mode`);
}

export interface WorkerMemoryOptions {
  /** The model each worker will replicate (its memory modes included); only its topology is read. */
  model: tf.LayersModel;
  workers: number;
  batchSize: number;
  imageSize?: number;
  numClasses?: number;
  /** The optimizer each replica trains with (its state counts); default MEASURING_OPTIMIZER. */
  optimizer?: OptimizerSettings;
  /** The backend the workers will compute on (default: the current one). */
  backend?: string;
}

/**
 * fitWorkerMemory on this machine: the step measured exactly on the meta backend that mirrors the workers'
 * backend, from a shape-only copy of the model (the live model is never touched), against machine.freeMemoryBytes().
 */
export async function checkWorkerMemory(options: WorkerMemoryOptions): Promise<WorkerMemoryNeed> {
  const traits = backendTraits(options.backend ?? tf.getBackend());
  const topology = options.model.toJSON(null, false) as tf.io.ModelJSON['modelTopology'];
  const freeBytes = machine.freeMemoryBytes();
  const optimizer = options.optimizer ?? MEASURING_OPTIMIZER;
  return onMeta(traits.plannedOn, async () => {
    const shadow = await tf.models.modelFromJSON({ modelTopology: topology } as tf.io.ModelJSON);
    try {
      const stepBytes = async (shard: number) =>
        (await measureTrainingStep({ model: shadow, batchSize: shard, imageSize: options.imageSize, numClasses: options.numClasses, optimizer, seed: 1 })).peakBytes;
      return await fitWorkerMemory({
        workers: options.workers,
        batchSize: options.batchSize,
        stepBytes,
        recordBytes: modelOfRecordBytes(options.model, optimizer),
        freeBytes,
        heapLimitBytes: traits.heapLimitBytes,
        measuredOn: `exact on ${traits.plannedOn}`,
      });
    } finally {
      shadow.dispose();
    }
  });
}
