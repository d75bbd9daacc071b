/**
 * The collectives of a data-parallel step over shared memory: a barrier, an all-gather of small float64
 * vectors (batch-norm statistics and sums, many per step) and a reduce-scatter then gather of float32
 * gradients (once per step; the reduction may be a sharded optimizer's update).
 * Worker threads block in Atomics.wait, which a worker may do; the main thread never waits here, so it stays
 * free to notice a worker's death and abort the group.
 *
 * Determinism: every replica reads every contribution and folds them in rank order, so all replicas get the
 * same bits, and the same bits on every run.
 * Faults: every wait has a timeout, and an abort (set by the main thread when a worker fails) wakes every
 * waiter, which then throws GroupAbortedError; a step never hangs.
 */
import type { ReplicaGroup } from '../norm/replicas.js';

/** The shared memory of a group; created by the main thread and posted to every worker. */
export interface GroupBuffers {
  /** Int32 control words (see CONTROL). */
  control: SharedArrayBuffer;
  /** Float64 all-gather slots: 2 phases × size ranks × slotValues. */
  gather: SharedArrayBuffer;
  /** Float32 gradient slots: size ranks × gradientValues, then the sum (gradientValues). */
  gradients: SharedArrayBuffer;
  size: number;
  slotValues: number;
  gradientValues: number;
  /** Longest wait at one barrier, in ms. */
  timeoutMs: number;
  /**
   * How long a worker spins (re-reading the barrier's word) before it sleeps in Atomics.wait, in µs. A
   * sleeping thread is woken by the kernel (tens of µs, more on a loaded or virtual machine), hundreds of times
   * a step; a spinning one sees the last arrival at once. Spinning only burns the waiting worker's own core.
   */
  spinMicros: number;
}

/**
 * Default spin before sleeping at a barrier (GroupBuffers.spinMicros). 0: on a loaded 2-core machine 50 µs of
 * spinning made steps slower, not faster (a spinning worker takes the time slice another thread needs);
 * `scripts/bench-sync.ts --spin 0,50` measures it on a quiet machine.
 */
export const DEFAULT_SPIN_MICROS = 0;

/** Indices of the control words: an abort flag and two barriers (arrivals, generation). */
const CONTROL = { abort: 0, gatherArrived: 1, gatherGeneration: 2, stepArrived: 3, stepGeneration: 4, length: 8 } as const;

/** Thrown in a worker whose group was aborted (another worker failed); the main thread reports the cause. */
export class GroupAbortedError extends Error {
  constructor() {
    super('the data-parallel group was aborted because another worker failed');
    this.name = 'GroupAbortedError';
  }
}

/** A barrier that did not complete within the timeout (a worker stopped making progress). */
export class BarrierTimeoutError extends Error {
  constructor(what: string, timeoutMs: number) {
    super(`a worker waited ${(timeoutMs / 1000).toFixed(0)} s at the ${what} barrier for the others; a worker stopped making progress`);
    this.name = 'BarrierTimeoutError';
  }
}

/**
 * Writes result[start, end) from the ranks' slots (`parts`, in rank order): one rank's share of a
 * reduce-scatter.
 */
export type ShareReducer = (parts: readonly Float32Array[], result: Float32Array, start: number, end: number) => void;

/** The default reduction: the sum over the parts in rank order, accumulated in float64 and rounded once. */
export function sumShare(parts: readonly Float32Array[], result: Float32Array, start: number, end: number): void {
  if (parts.length === 2) {
    // The common case without the inner loop: the same float64 sum, 0 + a + b.
    const [a, b] = parts as [Float32Array, Float32Array];
    for (let i = start; i < end; i++) result[i] = 0 + a[i]! + b[i]!;
    return;
  }
  for (let i = start; i < end; i++) {
    let acc = 0;
    for (const p of parts) acc += p[i]!;
    result[i] = acc;
  }
}

/** Allocates a group's shared memory (main thread). */
export function createGroupBuffers(size: number, slotValues: number, gradientValues: number, timeoutMs: number, spinMicros = DEFAULT_SPIN_MICROS): GroupBuffers {
  return {
    control: new SharedArrayBuffer(CONTROL.length * Int32Array.BYTES_PER_ELEMENT),
    gather: new SharedArrayBuffer(2 * size * slotValues * Float64Array.BYTES_PER_ELEMENT),
    gradients: new SharedArrayBuffer((size + 1) * gradientValues * Float32Array.BYTES_PER_ELEMENT),
    size,
    slotValues,
    gradientValues,
    timeoutMs,
    spinMicros,
  };
}

/** Sets the abort flag and wakes every waiter (main thread, when a worker fails). */
export function abortGroup(buffers: GroupBuffers): void {
  const control = new Int32Array(buffers.control);
  Atomics.store(control, CONTROL.abort, 1);
  Atomics.notify(control, CONTROL.gatherGeneration);
  Atomics.notify(control, CONTROL.stepGeneration);
}

/** One worker's view of the group. */
export class SharedGroup implements ReplicaGroup {
  private readonly control: Int32Array;
  private readonly gather: Float64Array;
  private readonly gradients: Float32Array;
  private gathers = 0;
  private barriers = 0;
  private waited = 0;
  /** Ranks 0 … participants − 1 hold samples in the current step and take part in its all-gathers. */
  private participants: number;

  constructor(
    private readonly buffers: GroupBuffers,
    readonly rank: number,
  ) {
    this.control = new Int32Array(buffers.control);
    this.gather = new Float64Array(buffers.gather);
    this.gradients = new Float32Array(buffers.gradients);
    this.participants = buffers.size;
  }

  get size(): number {
    return this.buffers.size;
  }

  /**
   * Barriers this rank has passed (or, alone in a step, skipped) since it started: the synchronized
   * reductions of its steps. Deterministic: 2 per training-mode batch norm and 2 for the gradient sum per step.
   */
  get barrierCount(): number {
    return this.barriers;
  }

  /** Milliseconds this rank has spent waiting at barriers for the others (spinning or asleep) since it started. */
  get waitedMs(): number {
    return this.waited;
  }

  /** Starts a step in which the first `participants` ranks hold samples. */
  beginStep(participants: number): void {
    this.participants = participants;
  }

  allGather(values: Float64Array): Float64Array[] {
    return this.startAllGather(values)();
  }

  /**
   * Writes this rank's values and arrives at the barrier; the returned function waits for the others and
   * reads every rank's. A vector longer than a slot goes in pieces, each its own collective; only the last
   * piece is split-phase.
   */
  startAllGather(values: Float64Array): () => Float64Array[] {
    const parts = Array.from({ length: this.participants }, () => new Float64Array(values.length));
    const slot = this.buffers.slotValues;
    const gatherPiece = (start: number): (() => void) => {
      const piece = values.subarray(start, Math.min(values.length, start + slot));
      // Two phases: a slot is written again only two gathers later, after every rank has passed the barrier
      // in between, so no rank overwrites what another has not read yet.
      const phase = this.gathers++ & 1;
      const base = (rank: number) => (phase * this.buffers.size + rank) * slot;
      this.gather.set(piece, base(this.rank));
      const wait = this.arrive(CONTROL.gatherArrived, CONTROL.gatherGeneration, this.participants, 'batch-norm');
      return () => {
        wait();
        for (let r = 0; r < this.participants; r++) parts[r]!.set(this.gather.subarray(base(r), base(r) + piece.length), start);
      };
    };
    let start = 0;
    for (; start + slot < values.length; start += slot) gatherPiece(start)();
    const last = gatherPiece(start);
    return () => {
      last();
      return parts;
    };
  }

  /** This rank's gradient slot: write the first n values there, then call reduceScatter(n) and gatherShares(n). */
  gradientSlot(): Float32Array {
    const stride = this.buffers.gradientValues;
    return this.gradients.subarray(this.rank * stride, (this.rank + 1) * stride);
  }

  /**
   * A reduce-scatter of the first `n` values of every rank's slot (participating in the step or not): once
   * every rank has written its slot, `reduce` writes this rank's share [start, end) of the shared result from
   * all the slots — by default their sum (sumShare), so the work is not repeated on every rank; a sharded
   * optimizer writes its new weights there instead. A rank's share depends only on `n`. gatherShares then
   * hands every rank the whole result, the same bits on every rank.
   */
  reduceScatter(n: number, reduce: ShareReducer = sumShare): { start: number; end: number; result: Float32Array } {
    if (n > this.buffers.gradientValues) throw new Error(`reduceScatter: ${n} values exceed the group's ${this.buffers.gradientValues}`);
    this.barrier(CONTROL.stepArrived, CONTROL.stepGeneration, this.buffers.size, 'gradient');
    const { start, end } = this.share(n);
    const parts = Array.from({ length: this.buffers.size }, (_, r) => this.slotOf(r).subarray(0, n));
    const result = this.sharedResult(n);
    reduce(parts, result, start, end);
    return { start, end, result };
  }

  /** This rank's share of n values: [start, end). */
  share(n: number): { start: number; end: number } {
    const share = Math.ceil(n / this.buffers.size);
    return { start: Math.min(n, this.rank * share), end: Math.min(n, (this.rank + 1) * share) };
  }

  /** Rank r's gradient slot (read between reduceScatter's barrier and gatherShares: whole and unchanged then). */
  private slotOf(rank: number): Float32Array {
    const stride = this.buffers.gradientValues;
    return this.gradients.subarray(rank * stride, (rank + 1) * stride);
  }

  /**
   * The second half of reduceScatter (or of gatherOwnShares): waits until every rank's share of the result is
   * written, and returns the whole result (the first `n` values).
   */
  gatherShares(n: number): Float32Array {
    // Every share is written before anyone reads the result; it is written again only after the next
    // reduceScatter's (or gatherOwnShares') first barrier, which every rank reaches after it has used this
    // one: a view, not a copy.
    this.barrier(CONTROL.stepArrived, CONTROL.stepGeneration, this.buffers.size, 'gradient');
    return this.sharedResult(n);
  }

  /**
   * Outside a step: each rank writes its share of the shared result (`write(result)`, only [share(n)]), and
   * every rank gets the whole (a view, valid until the next collective). Every rank must call it.
   */
  gatherOwnShares(n: number, write: (result: Float32Array) => void): Float32Array {
    // Nobody may still be reading the last step's result when it is overwritten.
    this.barrier(CONTROL.stepArrived, CONTROL.stepGeneration, this.buffers.size, 'gradient');
    write(this.sharedResult(n));
    return this.gatherShares(n);
  }

  /** The shared result's first n values (each rank writes only its share before gatherShares). */
  private sharedResult(n: number): Float32Array {
    const total = this.buffers.size * this.buffers.gradientValues;
    return this.gradients.subarray(total, total + n);
  }

  private barrier(arrivedIndex: number, generationIndex: number, count: number, what: string): void {
    this.arrive(arrivedIndex, generationIndex, count, what)();
  }

  /**
   * Arrives at a barrier; the returned function waits until every rank has arrived. The last to arrive
   * releases the others; a rank's next arrival only comes after its wait, so generations never mix.
   */
  private arrive(arrivedIndex: number, generationIndex: number, count: number, what: string): () => void {
    const control = this.control;
    this.barriers++;
    if (Atomics.load(control, CONTROL.abort)) throw new GroupAbortedError();
    const done = () => {
      if (Atomics.load(control, CONTROL.abort)) throw new GroupAbortedError();
    };
    if (count === 1) return done;
    const generation = Atomics.load(control, generationIndex);
    if (Atomics.add(control, arrivedIndex, 1) === count - 1) {
      Atomics.store(control, arrivedIndex, 0);
      Atomics.add(control, generationIndex, 1);
      Atomics.notify(control, generationIndex);
      return done;
    }
    return () => {
      if (Atomics.load(control, generationIndex) !== generation) return done();
      const start = performance.now();
      try {
        this.waitFor(generationIndex, generation, start, what);
      } finally {
        this.waited += performance.now() - start;
      }
    };
  }

  private waitFor(generationIndex: number, generation: number, start: number, what: string): void {
    const control = this.control;
    if (this.buffers.spinMicros > 0) {
      const spinEnd = start + this.buffers.spinMicros / 1000;
      while (Atomics.load(control, generationIndex) === generation && performance.now() < spinEnd) {
        // spin: the last arrival is usually a fraction of a millisecond away
      }
    }
    const deadline = start + this.buffers.timeoutMs;
    while (Atomics.load(control, generationIndex) === generation) {
      if (Atomics.load(control, CONTROL.abort)) throw new GroupAbortedError();
      const left = deadline - performance.now();
      if (left <= 0) throw new BarrierTimeoutError(what, this.buffers.timeoutMs);
      Atomics.wait(control, generationIndex, generation, Math.min(left, 1000));
    }
    if (Atomics.load(control, CONTROL.abort)) throw new GroupAbortedError();
  }
}
