/**
 * The GPU memory tfjs-backend-webgpu holds, and a bound on it. Its buffer manager allocates GPU buffers and,
 * when a tensor is freed, keeps the buffer in a pool keyed by exact (size, usage) for reuse, never destroying
 * it. A DenseNet step frees buffers of sizes that seldom come back (the `layer` mode's shrinking gradients),
 * so left alone the pool grew to 1.24–2.3× the tensors alive at the step's peak. Here the pool's free bytes
 * are bounded by a fraction of the bytes in use: whenever a release takes them over, the free buffers released
 * longest ago are destroyed (a step frees and asks again for the same shapes soon after — an activation and its
 * gradient — so the most recently freed are the likeliest to be reused; destroying the largest first cost more
 * time, scripts/webgpu-pool-cost.ts). So the GPU holds at most (1 + fraction) × the bytes in use at every
 * moment, and at the step's end the pool shrinks with what is in use.
 *
 * Why destroying a released buffer is safe. tfjs releases a buffer only when no command still being recorded
 * uses it: a tensor a queued-but-unsubmitted program reads or writes is in `commandQueueOwnedIds` and its
 * release waits in `tensorDataPendingDisposal` until `submitQueue`; uniform buffers wait in
 * `uniformPendingDisposal`; an upload's staging buffer waits in `stagingPendingDisposal`, and its destination is
 * uploaded only inside `runWebGPUProgram`, which marks it queue-owned at once; reads submit first. What a
 * released buffer may still be in is work already *submitted*, and the WebGPU spec lets `destroy()` come then:
 * the memory is reclaimed once the submitted work that uses it completes (tfjs itself destroys its upload
 * staging buffers this way, `releaseBuffer(b, false)` right after `submitQueue`).
 *
 * The pool's peak (what the GPU held at most) is also followed here: tfjs does not keep that mark.
 */

/** Free bytes the pool may keep, as a fraction of the bytes in use (the GPU holds ≤ 1 + this × in use). */
export const WEBGPU_POOL_FREE_FRACTION = 0.1;

/** A GPUBuffer as the pool sees it (Dawn's; typed here: the project compiles without WebGPU typings). */
interface PooledBuffer {
  size: number;
  destroy(): void;
}

interface BufferManagerInternals {
  numBytesAllocated: number;
  numBytesUsed: number;
  numFreeBuffers: number;
  freeBuffers: Map<string, PooledBuffer[]>;
  acquireBuffer: (...args: unknown[]) => PooledBuffer;
  releaseBuffer: (buffer: PooledBuffer, reuse?: boolean) => void;
}

/** Which free buffers go first when the pool is over its bound. */
export type TrimOrder = 'oldest' | 'largest';

interface PoolState {
  peak: number;
  /** Free bytes allowed, as a fraction of the bytes in use; Infinity: tfjs's own unbounded pool. */
  freeFraction: number;
  order: TrimOrder;
  /** Buffers destroyed to keep the bound (for scripts). */
  destroyed: number;
  /** Free buffers in the order they were released, each with its release number (stale entries skipped). */
  released: Array<[PooledBuffer, number]>;
  /** The first entry of `released` not yet looked at (entries before it are spent). */
  head: number;
  releaseNumber: WeakMap<PooledBuffer, number>;
  next: number;
}

const pools = new WeakMap<object, PoolState>();

function managerOf(backend: object): BufferManagerInternals | undefined {
  return (backend as { bufferManager?: BufferManagerInternals }).bufferManager;
}

/**
 * Starts following and bounding a WebGPUBackend's buffer pool (once per backend instance): the peak of its
 * allocated bytes, and free bytes ≤ `freeFraction` × bytes in use.
 */
export function trackWebGPUPool(backend: object, freeFraction: number = WEBGPU_POOL_FREE_FRACTION): void {
  const manager = managerOf(backend);
  if (!manager || pools.has(backend)) return;
  const state: PoolState = { peak: manager.numBytesAllocated, freeFraction, order: 'oldest', destroyed: 0, released: [], head: 0, releaseNumber: new WeakMap(), next: 0 };
  pools.set(backend, state);
  const acquire = manager.acquireBuffer;
  manager.acquireBuffer = function (this: BufferManagerInternals, ...args: unknown[]) {
    const buffer = acquire.apply(this, args);
    if (this.numBytesAllocated > state.peak) state.peak = this.numBytesAllocated;
    return buffer;
  };
  const release = manager.releaseBuffer;
  manager.releaseBuffer = function (this: BufferManagerInternals, buffer: PooledBuffer, reuse?: boolean) {
    const pooled = reuse !== false && this.freeBuffers.size > 0; // as tfjs decides; else it destroyed it or kept it untracked
    release.call(this, buffer, reuse);
    if (pooled) {
      state.releaseNumber.set(buffer, state.next);
      state.released.push([buffer, state.next++]);
    }
    trimPool(this, state);
  };
}

/** Destroys free buffers (the oldest released, or the largest) until the free bytes are within the bound. */
function trimPool(manager: BufferManagerInternals, state: PoolState): void {
  const allowed = state.freeFraction * manager.numBytesUsed;
  let free = manager.numBytesAllocated - manager.numBytesUsed;
  while (free > allowed) {
    const victim = state.order === 'oldest' ? oldestFree(manager, state) : largestFree(manager);
    if (!victim) return;
    const [list, index] = victim;
    const buffer = list[index];
    list[index] = list[list.length - 1];
    list.pop();
    buffer.destroy();
    manager.numFreeBuffers--;
    manager.numBytesAllocated -= buffer.size;
    free -= buffer.size;
    state.destroyed++;
  }
  // Entries of buffers taken again since accumulate only between trims: drop them once they outnumber the pool.
  if (state.released.length - state.head > 2 * manager.numFreeBuffers + 64 || state.head > 4096) {
    state.released = state.released.slice(state.head).filter(([b, n]) => isFree(manager, state, b, n));
    state.head = 0;
  }
}

const keyOf = (buffer: PooledBuffer & { usage?: number }) => `${buffer.size}_${buffer.usage}`;

function isFree(manager: BufferManagerInternals, state: PoolState, buffer: PooledBuffer, n: number): boolean {
  return state.releaseNumber.get(buffer) === n && (manager.freeBuffers.get(keyOf(buffer))?.includes(buffer) ?? false);
}

function oldestFree(manager: BufferManagerInternals, state: PoolState): [PooledBuffer[], number] | undefined {
  while (state.head < state.released.length) {
    const [buffer, n] = state.released[state.head++]!;
    if (state.releaseNumber.get(buffer) !== n) continue; // released again later: a newer entry stands for it
    const list = manager.freeBuffers.get(keyOf(buffer));
    const index = list?.indexOf(buffer) ?? -1;
    if (list && index >= 0) return [list, index];
  }
  return undefined;
}

function largestFree(manager: BufferManagerInternals): [PooledBuffer[], number] | undefined {
  let largest: PooledBuffer[] | undefined;
  for (const buffers of manager.freeBuffers.values()) {
    if (buffers.length > 0 && (!largest || buffers[0].size > largest[0].size)) largest = buffers;
  }
  return largest ? [largest, largest.length - 1] : undefined;
}

/**
 * Changes the bound of a followed backend's pool (Infinity: tfjs's unbounded pool, for comparisons); trims
 * the pool to it now. Returns false when the backend is not followed.
 */
export function setWebGPUPoolFreeFraction(backend: object, freeFraction: number, order: TrimOrder = 'oldest'): boolean {
  const state = pools.get(backend);
  const manager = managerOf(backend);
  if (!state || !manager) return false;
  if (!(freeFraction >= 0)) throw new RangeError(`webgpu pool free fraction must be ≥ 0 (or Infinity), got ${freeFraction}`);
  state.freeFraction = freeFraction;
  state.order = order;
  trimPool(manager, state);
  return true;
}

/** The most bytes the backend's buffer pool has held since it started, or null if it is not followed. */
export function webgpuPoolPeakBytes(backend: object): number | null {
  return pools.get(backend)?.peak ?? null;
}

/** Starts the peak afresh from what the pool holds now (scripts comparing policies in one process). */
export function resetWebGPUPoolPeak(backend: object): void {
  const state = pools.get(backend);
  const manager = managerOf(backend);
  if (state && manager) state.peak = manager.numBytesAllocated;
}

/** What the pool holds now: allocated and in-use bytes, and how many buffers the bound destroyed. */
export function webgpuPoolState(backend: object): { allocatedBytes: number; usedBytes: number; destroyedBuffers: number } | null {
  const state = pools.get(backend);
  const manager = managerOf(backend);
  if (!state || !manager) return null;
  return { allocatedBytes: manager.numBytesAllocated, usedBytes: manager.numBytesUsed, destroyedBuffers: state.destroyed };
}
