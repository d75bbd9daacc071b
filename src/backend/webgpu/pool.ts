/**
 * The GPU memory tfjs-backend-webgpu holds: its buffer manager allocates GPU buffers and, when a tensor is
 * freed, keeps the buffer in a pool keyed by (size, usage) for reuse instead of destroying it. So what the
 * GPU holds is the pool's allocated bytes (`tf.memory().numBytesAllocatedInGPU`), which only falls when a
 * read-back staging buffer is destroyed; its high-water mark is what a step needs from the device. tfjs does
 * not keep that mark, so the buffer manager's allocations are followed from the backend's start.
 */

interface BufferManagerInternals {
  numBytesAllocated: number;
  acquireBuffer: (...args: unknown[]) => unknown;
}

const peaks = new WeakMap<object, { peak: number }>();

/** Starts following a WebGPUBackend's buffer pool (once per backend instance). */
export function trackWebGPUPool(backend: object): void {
  const manager = (backend as { bufferManager?: BufferManagerInternals }).bufferManager;
  if (!manager || peaks.has(backend)) return;
  const state = { peak: manager.numBytesAllocated };
  peaks.set(backend, state);
  const acquire = manager.acquireBuffer;
  manager.acquireBuffer = function (this: BufferManagerInternals, ...args: unknown[]) {
    const buffer = acquire.apply(this, args);
    if (this.numBytesAllocated > state.peak) state.peak = this.numBytesAllocated;
    return buffer;
  };
}

/** The most bytes the backend's buffer pool has held since it started, or null if it is not followed. */
export function webgpuPoolPeakBytes(backend: object): number | null {
  return peaks.get(backend)?.peak ?? null;
}
