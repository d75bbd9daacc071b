/**
 * WorkerPool: synchronous data-parallel training over worker_threads. The main thread keeps the data, the
 * schedule and the model of record; each step it cuts the batch into shards (uneven where the batch does not
 * divide), each worker trains its replica on one and they sum their gradients (shared-group.ts), so every
 * replica makes the same update. The main thread's model and optimizer are brought up to date (`pull`) when
 * the caller needs them: for validation, snapshots and the end of a run.
 *
 * Faults: a worker that throws, dies or times out ends the pool with WorkerFailedError naming the worker and
 * the cause; the others are woken from any barrier and stopped, so nothing hangs.
 */
import { Worker } from 'node:worker_threads';
import * as tf from '@tensorflow/tfjs';
import { currentNumerics } from '../backend/index.js';
import { trainableVariables } from '../step/step.js';
import type { OptimizerSettings, TrainingOptimizer } from '../step/optimizers.js';
import type { ArrayTensor, Reply, RequestBody, StepProfile, WorkerData } from './protocol.js';
import { abortGroup, createGroupBuffers, type GroupBuffers } from './shared-group.js';
import { buffersOf, fromArrayTensor, fromPortableState, toArrayTensor, toPortableState } from './state.js';

/** A worker threw, died or stopped making progress; the pool is closed. */
export class WorkerFailedError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'WorkerFailedError';
  }
}

export interface WorkerPoolOptions {
  /** Number of workers, ≥ 1. */
  workers: number;
  /** The model of record: each worker starts from a copy of it (architecture, memory modes, weights). */
  model: tf.LayersModel;
  optimizer: OptimizerSettings & { featuresLrScale: number };
  /** The optimizer state to start from (a resumed run's); none: fresh. */
  optimizerState?: TrainingOptimizer;
  /** Indices among the model's trainable weights of the classifier's. */
  classifier: number[];
  /** The longest a worker waits for the others at one barrier. Default 10 minutes. */
  barrierTimeoutMs?: number;
  /** How long a worker spins at a barrier before it sleeps, in µs (shared-group.ts). */
  barrierSpinMicros?: number;
  /**
   * Default true: batch norm normalises with the whole batch's statistics, so N workers train the function of
   * one process. false: PyTorch DDP's default (see worker.ts): each worker its shard's statistics, gradients
   * averaged over the workers, rank 0's running statistics kept.
   */
  syncBatchNorm?: boolean;
  /**
   * Default true: a worker that has published its batch-norm backward sums computes the layer's kernel
   * gradient before it waits for the others' (shared-group.ts startAllGather). false: it waits at once (the
   * earlier behaviour; A/B measurement only, scripts/bench-sync.ts).
   */
  splitPhase?: boolean;
}

export interface PoolStep {
  xs: tf.Tensor;
  /** Targets (one-hot or smoothed), [batch, classes]. */
  ys: tf.Tensor;
  lr: number;
  /** Train the features too (false: classifier only, features in inference mode). */
  features: boolean;
  dropout: { seed: number; step: number[] };
}

/** Shard sizes of a batch of `n` over `workers`: as even as possible, the larger ones first. */
export function shardSizes(n: number, workers: number): number[] {
  const base = Math.floor(n / workers);
  return Array.from({ length: workers }, (_, r) => base + (r < n % workers ? 1 : 0));
}

let threadsStarted = 0;

/** Worker threads this module has started since the process began: lets tests show a refused run started none. */
export function workerThreadsStarted(): number {
  return threadsStarted;
}

/** How a worker is started: the compiled worker.js, or worker.ts through tsx when running from source. */
function startWorker(workerData: WorkerData): Worker {
  threadsStarted++;
  const here = import.meta.url;
  if (here.endsWith('.ts')) {
    const entry = new URL('./worker.ts', here).href;
    const boot = `import('tsx/esm/api').then((api) => { api.register(); return import(${JSON.stringify(entry)}); });`;
    return new Worker(boot, { eval: true, workerData });
  }
  return new Worker(new URL('./worker.js', here), { workerData });
}

/** The values an all-gather slot must hold: count, mean and M2 (or two sums) per channel of the widest norm. */
function slotValuesFor(model: tf.LayersModel): number {
  const widest = Math.max(1, ...model.weights.filter((w) => w.shape.length === 1).map((w) => w.shape[0] ?? 1));
  return 1 + 2 * widest;
}

interface Pending {
  resolve: (reply: Reply) => void;
  reject: (error: Error) => void;
}

export class WorkerPool {
  private readonly workers: Worker[] = [];
  private readonly pending = new Map<number, Pending>();
  private nextId = 0;
  private failure: WorkerFailedError | null = null;
  private closing = false;
  private readonly variables: tf.Variable[];
  private profiles: StepProfile[] = [];

  private constructor(
    private readonly buffers: GroupBuffers,
    model: tf.LayersModel,
  ) {
    this.variables = trainableVariables(model);
  }

  get size(): number {
    return this.buffers.size;
  }

  /** The barriers each worker passed in the last step, in rank order (2 per synchronized BN, 2 for the gradients). */
  get lastStepBarriers(): number[] {
    return this.profiles.map((p) => p.barriers);
  }

  /** Where each worker's last step went, in rank order (protocol.ts StepProfile). */
  get lastStepProfiles(): StepProfile[] {
    return this.profiles.map((p) => ({ ...p }));
  }

  /** Starts the workers, each with a replica of `model` (and of `optimizerState` when given). */
  static async start(options: WorkerPoolOptions): Promise<WorkerPool> {
    const { workers, model } = options;
    if (!(Number.isInteger(workers) && workers >= 1)) throw new Error(`WorkerPool: workers must be an integer ≥ 1, got ${workers}`);
    const values = (weights: tf.LayerVariable[]) => weights.reduce((n, w) => n + w.shape.reduce((a: number, b) => a * (b ?? 1), 1), 0);
    // The gradients, one presence flag per variable, and (without synchronized BN) rank 0's buffers.
    const gradientValues = values(model.trainableWeights) + model.trainableWeights.length + values(model.nonTrainableWeights);
    const buffers = createGroupBuffers(workers, slotValuesFor(model), gradientValues, options.barrierTimeoutMs ?? 600_000, options.barrierSpinMicros);
    const pool = new WorkerPool(buffers, model);
    const backend = tf.getBackend();
    for (let rank = 0; rank < workers; rank++) pool.spawn(rank, backend);
    let artifacts: tf.io.ModelArtifacts | undefined;
    await model.save(tf.io.withSaveHandler(async (a) => {
      artifacts = a;
      return { modelArtifactsInfo: { dateSaved: new Date(), modelTopologyType: 'JSON' } };
    }));
    try {
      const syncBatchNorm = options.syncBatchNorm ?? true;
      await pool.all(() => ({ type: 'init', artifacts: artifacts!, optimizer: options.optimizer, classifier: options.classifier, syncBatchNorm, splitPhase: options.splitPhase ?? true }));
      if (options.optimizerState) await pool.push(model, options.optimizerState);
    } catch (error) {
      await pool.close();
      throw error;
    }
    return pool;
  }

  private spawn(rank: number, backend: string): void {
    const worker = startWorker({ rank, buffers: this.buffers, backend, numerics: currentNumerics() });
    this.workers.push(worker);
    worker.on('message', (reply: Reply) => {
      const pending = this.pending.get(reply.id);
      if (!pending) return;
      this.pending.delete(reply.id);
      if (reply.type === 'error') {
        // A worker woken by the abort only echoes the failure that caused it.
        if (!reply.aborted) this.fail(`data-parallel worker ${rank} of ${this.size} failed: ${reply.message}`);
        pending.reject(this.failure ?? new WorkerFailedError(reply.message));
      } else {
        pending.resolve(reply);
      }
    });
    worker.on('error', (error) => this.fail(`data-parallel worker ${rank} of ${this.size} crashed: ${error.message}`));
    worker.on('exit', (code) => {
      if (!this.closing) this.fail(`data-parallel worker ${rank} of ${this.size} exited unexpectedly (exit code ${code})`);
    });
  }

  /** Ends the pool after a worker's failure: wakes and stops the others, fails every pending request. */
  private fail(message: string): void {
    if (this.failure || this.closing) return;
    this.failure = new WorkerFailedError(message);
    abortGroup(this.buffers);
    for (const pending of this.pending.values()) pending.reject(this.failure);
    this.pending.clear();
    void this.close();
  }

  private request(rank: number, message: RequestBody, transfer: ArrayBuffer[] = []): Promise<Reply> {
    if (this.failure) return Promise.reject(this.failure);
    if (this.closing) return Promise.reject(new WorkerFailedError('the worker pool is closed'));
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      this.workers[rank]!.postMessage({ ...message, id }, transfer);
    });
  }

  /** Sends each rank its request and waits for every reply (the first failure rejects). */
  private async all(make: (rank: number) => RequestBody, transfer: (rank: number) => ArrayBuffer[] = () => []): Promise<Reply[]> {
    const replies = this.workers.map((_, rank) => this.request(rank, make(rank), transfer(rank)));
    // Settle all before throwing, so no rejection goes unhandled.
    const settled = await Promise.allSettled(replies);
    const failed = settled.find((s): s is PromiseRejectedResult => s.status === 'rejected');
    if (failed) throw this.failure ?? failed.reason;
    return settled.map((s) => (s as PromiseFulfilledResult<Reply>).value);
  }

  /** One synchronous step over the whole batch; returns its mean loss and the number classified correctly. */
  async step(step: PoolStep): Promise<{ loss: number; correct: number }> {
    const n = step.xs.shape[0]!;
    const sizes = shardSizes(n, this.size);
    const participants = sizes.filter((s) => s > 0).length;
    const xs = step.xs.dataSync() as Float32Array;
    const ys = step.ys.dataSync() as Float32Array;
    const xsPer = step.xs.size / n;
    const ysPer = step.ys.size / n;
    const offsets = sizes.map((_, r) => sizes.slice(0, r).reduce((a, b) => a + b, 0));
    const shard = (values: Float32Array, per: number, shape: number[], r: number): ArrayTensor | null =>
      sizes[r] === 0 ? null : { values: values.slice(offsets[r]! * per, (offsets[r]! + sizes[r]!) * per), shape: [sizes[r]!, ...shape.slice(1)], dtype: 'float32' };
    const shards = sizes.map((_, r) => ({ xs: shard(xs, xsPer, step.xs.shape, r), ys: shard(ys, ysPer, step.ys.shape, r) }));
    const replies = await this.all(
      (r) => ({
        type: 'step',
        xs: shards[r]!.xs,
        ys: shards[r]!.ys,
        batchSize: n,
        participants,
        sampleOffset: offsets[r]!,
        lr: step.lr,
        features: step.features,
        dropout: step.dropout,
      }),
      (r) => buffersOf([shards[r]!.xs, shards[r]!.ys].filter((t): t is ArrayTensor => t !== null)),
    );
    let loss = 0;
    let correct = 0;
    const profiles: StepProfile[] = [];
    for (const reply of replies) {
      if (reply.type !== 'stepped') throw new Error(`unexpected reply '${reply.type}' to a step`);
      loss += reply.loss;
      correct += reply.correct;
      profiles.push(reply.profile);
    }
    this.profiles = profiles;
    return { loss, correct };
  }

  /** Copies rank 0's weights (running statistics included) and, when given, optimizer state into the caller's. */
  async pull(model: tf.LayersModel, optimizer?: TrainingOptimizer): Promise<void> {
    // Every rank answers (a sharded optimizer's state is gathered from all); rank 0's reply holds it all.
    const [reply] = await this.all(() => ({ type: 'get-state', optimizer: optimizer !== undefined }));
    if (!reply) throw new Error('no worker answered get-state');
    if (reply.type !== 'state') throw new Error(`unexpected reply '${reply.type}' to get-state`);
    const weights = reply.weights.map(fromArrayTensor);
    try {
      model.setWeights(weights);
    } finally {
      tf.dispose(weights);
    }
    if (optimizer && reply.optimizer) {
      const state = fromPortableState(reply.optimizer, this.variables);
      try {
        await optimizer.setState(state);
      } finally {
        tf.dispose(state.map((s) => s.tensor));
      }
    }
  }

  /** Copies the caller's weights and optimizer state into every worker. */
  async push(model: tf.LayersModel, optimizer: TrainingOptimizer): Promise<void> {
    const weights = model.getWeights().map(toArrayTensor);
    const state = await optimizer.getState();
    const portable = toPortableState(state, this.variables);
    tf.dispose(state.map((s) => s.tensor));
    await this.all(() => ({ type: 'set-state', weights, optimizer: portable }));
  }

  /** What each worker's backend holds at its peak so far (memory/backend-memory.ts), in rank order. */
  async backendPeakBytes(): Promise<Array<number | null>> {
    const replies = await this.all(() => ({ type: 'memory' }));
    return replies.map((r) => (r.type === 'memory' ? r.backendPeakBytes : null));
  }

  /** Stops every worker (idempotent). */
  async close(): Promise<void> {
    if (this.closing) return;
    this.closing = true;
    abortGroup(this.buffers);
    await Promise.all(this.workers.map((w) => w.terminate().catch(() => undefined)));
  }
}
