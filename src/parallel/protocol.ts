/**
 * The messages between the main thread and its data-parallel workers. Every request carries an id that
 * its reply repeats; tensors travel as float32 arrays with their shapes.
 */
import type * as tf from '@tensorflow/tfjs';
import type { OptimizerSettings } from '../step/optimizers.js';
import type { GroupBuffers } from './shared-group.js';

import type { Numerics } from '../backend/numerics.js';

/** What a worker is started with (`workerData`). */
export interface WorkerData {
  rank: number;
  buffers: GroupBuffers;
  /** The tfjs backend to run on: the main thread's. */
  backend: string;
  /** The main thread's numerics (backend/numerics.ts), so every shard sums alike. */
  numerics: Numerics;
}

/** A tensor's values and shape, sent by copy or transfer. */
export interface ArrayTensor {
  values: Float32Array | Int32Array;
  shape: number[];
  dtype: 'float32' | 'int32';
}

/** An optimizer state tensor named portably: variables by their index among the model's trainable weights. */
export interface PortableState {
  name: string;
  tensor: ArrayTensor;
}

export interface InitRequest {
  type: 'init';
  id: number;
  /** The model as tfjs saves it (topology, weight specs and values). */
  artifacts: tf.io.ModelArtifacts;
  optimizer: OptimizerSettings & { featuresLrScale: number };
  /** Indices among the model's trainable weights of the classifier's (the rest are the features). */
  classifier: number[];
  /**
   * true: batch norm normalises with the whole batch's statistics (the function of one process). false:
   * PyTorch DDP's default — each worker its own shard's, gradients averaged, rank 0's running statistics kept.
   */
  syncBatchNorm: boolean;
  /** Split-phase batch-norm gathers (work between arriving and waiting); false waits at once (A/B measurement). */
  splitPhase: boolean;
}

export interface StepRequest {
  type: 'step';
  id: number;
  /** This worker's shard (null: the batch has fewer samples than workers and this one has none). */
  xs: ArrayTensor | null;
  ys: ArrayTensor | null;
  /** Samples in the whole batch, and how many workers hold some (ranks 0 … participants − 1). */
  batchSize: number;
  participants: number;
  /** Index in the whole batch of this shard's first sample (dropout masks are drawn per global sample). */
  sampleOffset: number;
  lr: number;
  /** Train the features too (false: only the classifier, the features in inference mode). */
  features: boolean;
  dropout: { seed: number; step: number[] };
}

export interface StateRequest {
  type: 'get-state';
  id: number;
  optimizer: boolean;
}

export interface SetStateRequest {
  type: 'set-state';
  id: number;
  weights: ArrayTensor[];
  optimizer: PortableState[] | null;
}

export interface MemoryRequest {
  type: 'memory';
  id: number;
}

export type Request = InitRequest | StepRequest | StateRequest | SetStateRequest | MemoryRequest;

export type Reply =
  | { type: 'ready'; id: number }
  | { type: 'stepped'; id: number; loss: number; correct: number; profile: StepProfile }
  | { type: 'state'; id: number; weights: ArrayTensor[]; optimizer: PortableState[] | null }
  | { type: 'done'; id: number }
  | { type: 'memory'; id: number; backendPeakBytes: number | null }
  | { type: 'error'; id: number; message: string; stack?: string; aborted: boolean };

/** Where one worker's step went: its collectives counted and timed (ms). */
export interface StepProfile {
  /** Barriers passed: 2 per synchronized batch norm, 2 for the gradient sum. */
  barriers: number;
  /** Waiting at barriers for the other workers (batch norm and gradients). */
  waitMs: number;
  /** From the gradients computed to the update applied: copying into the shared slot, the sum, the update. */
  gradientMs: number;
  stepMs: number;
}

/** A request before the pool numbers it. */
export type RequestBody = Request extends infer R ? (R extends Request ? Omit<R, 'id'> : never) : never;
