/** How many data-parallel workers a run gets, from what the caller asked and the backend it runs on. */
import * as os from 'node:os';
import { backendTraits, workerBackends } from '../backend/traits.js';
import { UsageError } from '../util/errors.js';
import { checkWorkerCores } from './admission.js';

/** The `workers` option's values: a count, or 'auto'. */
export type WorkersOption = number | 'auto';

/**
 * 'auto': one worker per core on wasm and cpu (tfjs runs them on one thread each, so a machine with N cores
 * otherwise uses one), 1 on native and GPU backends, which parallelise inside their kernels. A count above
 * 1 on those backends is refused.
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

/** Checks the option's form: an integer ≥ 1 or 'auto'. */
export function checkWorkers(name: string, value: unknown): WorkersOption | undefined {
  if (value === undefined || value === 'auto') return value;
  if (typeof value === 'number' && Number.isInteger(value) && value >= 1 && value <= 256) return value;
  throw new UsageError(`${name} must be an integer from 1 to 256 or 'auto', got ${typeof value === 'string' ? `'${value}'` : String(value)}`);
}
