/**
 * The wasm backend's heap stops at 4 GiB; past it an allocation fails deep inside the module with messages
 * like "memory access out of bounds". This turns such failures into an error a researcher can act on.
 */
export class OutOfMemoryError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'OutOfMemoryError';
  }
}

// 'table index is out of bounds': a failed wasm malloc returns 0, and the kernel then writes over the module's
// low memory (its function table indices) before anything reports the allocation.
const OOM_PATTERNS = [/memory access out of bounds/i, /table index is out of bounds/i, /out of memory/i, /Aborted\(OOM\)/i, /WebAssembly\.Memory/i, /Cannot enlarge memory/i, /Array buffer allocation failed/i, /Invalid typed array length/i, /OOM when allocating/i];

export function looksLikeOutOfMemory(error: unknown): boolean {
  const message = error instanceof Error ? `${error.name}: ${error.message}` : String(error);
  return OOM_PATTERNS.some((pattern) => pattern.test(message));
}

/** Describes what ran out of memory and what to try, or returns the error unchanged when it is not an OOM. */
export function explainOutOfMemory(error: unknown, context: { backend: string; model: string; batchSize: number; memoryEfficient: boolean }): unknown {
  if (!looksLikeOutOfMemory(error)) return error;
  const limit = context.backend === 'wasm' ? ' (the wasm heap stops at 4 GiB)' : '';
  const remedies = [
    ...(context.memoryEfficient ? [] : ['memoryEfficient: true (--memory-efficient)']),
    `a smaller batch than ${context.batchSize}`,
    'a smaller image size',
    ...(context.backend === 'tensorflow' ? [] : ['the tensorflow backend on a GPU (@tensorflow/tfjs-node-gpu)']),
    "'efficient-densenet max-batch' to find the largest batch that fits",
  ];
  return new OutOfMemoryError(
    `out of memory on the ${context.backend} backend${limit} training ${context.model} at batch ${context.batchSize}; try ${remedies.join(', or ')}`,
    { cause: error },
  );
}
