/**
 * A data-parallel worker: its own tfjs on the main thread's backend, a replica of the model and of the
 * optimizer. Each step it trains on its shard of the batch — batch norms synchronized over the group
 * (norm/replicas.ts), the loss scaled by its share of the batch — sums the gradients with every other
 * worker in rank order and applies the same update as they do, so all replicas stay identical. With SGD the
 * update is sharded (step/sharded-sgd.ts, ZeRO stage 1): each worker sums and updates only its share of the
 * parameters, keeping only that share's momentum, and the new weights are gathered; with Adam every worker
 * applies the whole summed gradient through tfjs.
 *
 * Without synchronized batch norm (PyTorch DDP's default): each worker normalises with its own shard's
 * statistics, its loss is its shard's mean scaled by 1/participants (so the sum is DDP's all-reduce mean of
 * gradients), and rank 0's running statistics ride along with the gradient sum (the others add zeros), so
 * every replica ends the step with rank 0's buffers, as DDP's broadcast_buffers=True gives them at the next
 * forward.
 *
 * Fault injection for tests: EFFICIENT_DENSENET_WORKER_FAULT=`exit@R:S` ends worker R in the middle of its
 * step S (counted from 0, at its first batch-norm synchronization), `throw@R:S` makes it throw there.
 */
import { parentPort, workerData } from 'node:worker_threads';
import * as tf from '@tensorflow/tfjs';
import { initBackend, type BackendName } from '../backend/index.js';
import { float32Values, tensorOfCopy } from '../backend/values.js';
import { withDropoutContext } from '../ops/dropout.js';
import { setReplicaGroup } from '../norm/replicas.js';
import '../layers/densenet.js';
import { backendPeakBytes } from '../memory/backend-memory.js';
import { lossGradients, TrainingOptimizer, type ParamGroups } from '../step/optimizers.js';
import { flatLayout, ShardedSgd, type FlatLayout } from '../step/sharded-sgd.js';
import { trainableVariables } from '../step/step.js';
import type { InitRequest, Reply, Request, SetStateRequest, StepProfile, StepRequest, WorkerData } from './protocol.js';
import { GroupAbortedError, SharedGroup, sumShare } from './shared-group.js';
import { buffersOf, fromArrayTensor, fromPortableState, toArrayTensor, toPortableState } from './state.js';

const data = workerData as WorkerData;
const port = parentPort!;
const group = new SharedGroup(data.buffers, data.rank);

interface Replica {
  model: tf.LayersModel;
  optimizer: TrainingOptimizer;
  variables: tf.Variable[];
  features: tf.Variable[];
  classifier: tf.Variable[];
  /** Running statistics and any other non-trainable weights (broadcast from rank 0 without synchronized BN). */
  buffers: tf.LayerVariable[];
  syncBatchNorm: boolean;
  /** The trainable variables laid end to end: the gradient vector's (and the sharded update's) layout. */
  layout: FlatLayout & { total: number };
  /** Values a step shares: the gradients, a presence flag per variable, rank 0's buffers without synchronized BN. */
  flatValues: number;
  /** SGD sharded over the workers (each updates its share of the weights); null: Adam, through `optimizer`. */
  sgd: ShardedSgd | null;
}
let replica: Replica | null = null;
let steps = 0;

const fault = parseFault(process.env.EFFICIENT_DENSENET_WORKER_FAULT);

function parseFault(spec: string | undefined): { kind: 'exit' | 'throw'; rank: number; step: number } | null {
  const match = /^(exit|throw)@(\d+):(\d+)$/.exec(spec ?? '');
  return match ? { kind: match[1] as 'exit' | 'throw', rank: Number(match[2]), step: Number(match[3]) } : null;
}

/** Ends or fails this worker if an injected fault is due in the current step. */
function strikeFault(): void {
  if (!fault || fault.rank !== data.rank || fault.step !== steps - 1) return;
  if (fault.kind === 'exit') process.exit(1);
  throw new Error(`injected fault in worker ${data.rank} at step ${fault.step}`);
}

/** The number of values a (non-trainable) layer variable holds. */
function sizeOf(v: tf.LayerVariable): number {
  return v.shape.reduce((a: number, b) => a * (b ?? 1), 1);
}

async function init(request: InitRequest): Promise<void> {
  await initBackend(data.backend as BackendName, { numerics: data.numerics });
  const model = await tf.loadLayersModel(tf.io.fromMemory(request.artifacts));
  const variables = trainableVariables(model);
  const isClassifier = new Set(request.classifier);
  const optimizer = new TrainingOptimizer(request.optimizer);
  const layout = flatLayout(variables, isClassifier);
  const buffers = model.nonTrainableWeights;
  const bufferValues = buffers.reduce((n, v) => n + sizeOf(v), 0);
  const flatValues = layout.total + variables.length + (request.syncBatchNorm || group.size === 1 ? 0 : bufferValues);
  const { start, end } = group.share(flatValues);
  replica = {
    model,
    optimizer,
    variables,
    classifier: variables.filter((_, i) => isClassifier.has(i)),
    features: variables.filter((_, i) => !isClassifier.has(i)),
    buffers,
    syncBatchNorm: request.syncBatchNorm,
    layout,
    flatValues,
    sgd: ShardedSgd.supports(request.optimizer) ? new ShardedSgd(request.optimizer, layout, Math.min(start, layout.total), Math.min(end, layout.total)) : null,
  };
  // The faulty step's first synchronization is where an injected fault strikes: mid-step, others waiting.
  setReplicaGroup(
    request.syncBatchNorm
      ? {
          startAllGather: (values) => {
            strikeFault();
            const collect = group.startAllGather(values);
            if (request.splitPhase) return collect;
            const parts = collect();
            return () => parts;
          },
        }
      : null,
  );
}

function step(request: StepRequest): { loss: number; correct: number; profile: StepProfile } {
  const r = replica!;
  steps++;
  const started = performance.now();
  const barriersBefore = group.barrierCount;
  const waitedBefore = group.waitedMs;
  group.beginStep(request.participants);
  // A worker that never synchronizes a batch norm (no samples, or no synchronized BN) fails at its step's start.
  if (!r.syncBatchNorm || !request.xs) strikeFault();
  const groups: ParamGroups = { features: request.features ? r.features : [], classifier: r.classifier };
  const trained = r.variables.filter((v) => groups.classifier.includes(v) || groups.features.includes(v));
  let loss = 0;
  let correct = 0;
  let grads: tf.NamedTensorMap = {};
  if (request.xs && request.ys) {
    const xs = fromArrayTensor(request.xs);
    const ys = fromArrayTensor(request.ys);
    try {
      // Synchronized: this shard's part of the whole batch's mean loss. DDP: the mean of the shards' mean losses.
      const share = r.syncBatchNorm ? request.xs.shape[0]! / request.batchSize : 1 / request.participants;
      const context = { ...request.dropout, sampleOffset: request.sampleOffset };
      const out = withDropoutContext(context, () => lossGradients(() => r.model.apply(xs, { training: request.features }) as tf.Tensor, ys, groups, share));
      [loss, correct] = [out.loss.dataSync()[0]!, out.correct.dataSync()[0]!];
      tf.dispose([out.loss, out.correct]);
      grads = out.grads;
    } finally {
      tf.dispose([xs, ys]);
    }
  }
  // One flat vector in this worker's shared slot, the same layout every step: every trainable variable's
  // gradient (zeros where this shard has none or the variable is not trained), then one presence flag per
  // variable, so a variable no replica has a gradient for is left alone, as in one process; without
  // synchronized BN, then rank 0's buffers (zeros from the others).
  const gradientsFrom = performance.now();
  const { offsets, total } = r.layout;
  const broadcast = r.syncBatchNorm || group.size === 1 ? [] : r.buffers;
  const n = r.flatValues;
  const slot = group.gradientSlot();
  let at = total + r.variables.length;
  for (const v of broadcast) {
    const size = sizeOf(v);
    if (data.rank === 0) slot.set(float32Values(v.read()), at);
    else slot.fill(0, at, at + size);
    at += size;
  }
  const isTrained = new Set(trained);
  r.variables.forEach((v, i) => {
    const g = isTrained.has(v) ? grads[v.name] : undefined;
    // Read where the backend keeps it (no copy out of the wasm heap), written once into shared memory.
    if (g) slot.set(float32Values(g), offsets[i]!);
    else slot.fill(0, offsets[i]!, offsets[i]! + v.size);
    slot[total + i] = g ? 1 : 0;
  });
  tf.dispose(Object.values(grads));
  // Each rank reduces its share: the sum, and where SGD is sharded, the update of its share of the weights.
  let applied: boolean[] = [];
  group.reduceScatter(n, (parts, result, start, end) => {
    // Every replica with samples has the same presence (the same graph): any rank's flag counts.
    applied = r.variables.map((_, i) => parts.some((p) => p[total + i]! > 0));
    if (!r.sgd) return sumShare(parts, result, start, end);
    sumShare(parts, result, Math.max(start, total), end);
    r.sgd.setLearningRate(request.lr);
    r.sgd.update(parts, result, applied, (i) => float32Values(r.variables[i]!));
  });
  const sum = group.gatherShares(n);
  if (r.sgd) {
    // The new weights, gathered from every share: new tensors (tfjs-wasm keeps convolution weights packed
    // by tensor, so values are never changed in place).
    r.variables.forEach((v, i) => {
      if (!applied[i]) return;
      const next = tensorOfCopy(sum.subarray(offsets[i]!, offsets[i]! + v.size), v.shape);
      v.assign(next);
      next.dispose();
    });
  } else {
    const summed: tf.NamedTensorMap = {};
    r.variables.forEach((v, i) => {
      if (applied[i]) summed[v.name] = tensorOfCopy(sum.subarray(offsets[i]!, offsets[i]! + v.size), v.shape);
    });
    r.optimizer.setLearningRate(request.lr);
    r.optimizer.apply(summed, groups);
  }
  if (data.rank !== 0) {
    // x + 0 + … + 0 is x exactly: these are rank 0's buffers, bit for bit.
    let at = total + r.variables.length;
    for (const v of broadcast) {
      const n = sizeOf(v);
      const values = sum.subarray(at, at + n);
      tf.tidy(() => void v.write(tensorOfCopy(values, v.shape as number[])));
      at += n;
    }
  }
  const end = performance.now();
  const profile = { barriers: group.barrierCount - barriersBefore, waitMs: group.waitedMs - waitedBefore, gradientMs: end - gradientsFrom, stepMs: end - started };
  return { loss, correct, profile };
}

async function setState(request: SetStateRequest): Promise<void> {
  const r = replica!;
  const weights = request.weights.map(fromArrayTensor);
  try {
    r.model.setWeights(weights);
  } finally {
    tf.dispose(weights);
  }
  if (request.optimizer) {
    const state = fromPortableState(request.optimizer, r.variables);
    try {
      if (r.sgd) r.sgd.setState(state, r.variables);
      else await r.optimizer.setState(state);
    } finally {
      tf.dispose(state.map((s) => s.tensor));
    }
  }
}

async function handle(request: Request): Promise<void> {
  const reply = (message: Reply, transfer: ArrayBuffer[] = []) => port.postMessage(message, transfer);
  try {
    switch (request.type) {
      case 'init':
        await init(request);
        return reply({ type: 'ready', id: request.id });
      case 'step':
        return reply({ type: 'stepped', id: request.id, ...step(request) });
      case 'get-state': {
        const r = replica!;
        const weights = data.rank === 0 ? r.model.getWeights().map(toArrayTensor) : [];
        let optimizer = null;
        if (request.optimizer && r.sgd) {
          // Every rank holds its share of the momentum: all write theirs, rank 0 reads the whole.
          const sgd = r.sgd;
          const momentum = group.gatherOwnShares(r.flatValues, (result) => sgd.writeMomentum(result));
          if (data.rank === 0) {
            const state = sgd.state(momentum, r.variables);
            optimizer = toPortableState(state, r.variables);
            tf.dispose(state.map((s) => s.tensor));
          }
        } else if (request.optimizer && data.rank === 0) {
          const state = await r.optimizer.getState();
          optimizer = toPortableState(state, r.variables);
          tf.dispose(state.map((s) => s.tensor));
        }
        return reply({ type: 'state', id: request.id, weights, optimizer }, [...buffersOf(weights), ...buffersOf((optimizer ?? []).map((s) => s.tensor))]);
      }
      case 'set-state':
        await setState(request);
        return reply({ type: 'done', id: request.id });
      case 'memory':
        return reply({ type: 'memory', id: request.id, backendPeakBytes: await backendPeakBytes() });
    }
  } catch (error) {
    const e = error instanceof Error ? error : new Error(String(error));
    reply({ type: 'error', id: request.id, message: e.message, stack: e.stack, aborted: e instanceof GroupAbortedError });
  }
}

// One request at a time, in order (a step must not start before the previous one ends).
let queue = Promise.resolve();
port.on('message', (request: Request) => {
  queue = queue.then(() => handle(request));
});
