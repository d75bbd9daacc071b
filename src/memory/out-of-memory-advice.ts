/**
 * What to try when a training step runs out of memory: the error names the backend, the model, the batch and
 * the remedies that apply (a leaner memory mode, a smaller batch, another backend, max-batch).
 */
import { looksLikeOutOfMemory, OutOfMemoryError } from '../backend/out-of-memory.js';
import { backendTraits } from '../backend/traits.js';
import { MEMORY_MODES, type MemoryMode } from '../layers/memory-modes.js';

export interface OutOfMemoryContext {
  backend: string;
  model: string;
  batchSize: number;
  /** The mode that ran out (a per-block plan: its richest block's mode). */
  memoryMode: MemoryMode;
}

/** Describes what ran out of memory and what to try, or returns the error unchanged when it is not an OOM. */
export function explainOutOfMemory(error: unknown, context: OutOfMemoryContext): unknown {
  if (!looksLikeOutOfMemory(error)) return error;
  const traits = backendTraits(context.backend);
  const limit = traits.heapLimitBytes !== null ? ` (the ${context.backend} heap stops at ${traits.heapLimitBytes / 2 ** 30} GiB)` : '';
  // MEMORY_MODES lists the baseline first: the modes after the one that ran out keep less.
  const leaner = MEMORY_MODES.slice(MEMORY_MODES.indexOf(context.memoryMode) + 1);
  const remedies = [
    ...(leaner.length > 0 ? [`a leaner memory mode: ${leaner.map((m) => `'${m}'`).join(' or ')} (memoryMode, --memory-mode)`] : []),
    `a smaller batch than ${context.batchSize}`,
    'a smaller image size',
    ...(traits.costClass === 'parallel' ? [] : ['a GPU backend (@tensorflow/tfjs-node-gpu, or webgpu)']),
    "'efficient-densenet max-batch' to find the largest batch that fits",
  ];
  return new OutOfMemoryError(
    `out of memory on the ${context.backend} backend${limit} training ${context.model} at batch ${context.batchSize}; try ${remedies.join(', or ')}`,
    { cause: error },
  );
}
