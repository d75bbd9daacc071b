/**
 * Per-channel reductions of NHWC (or NC) tensors, accumulated in float64: the batch-norm statistics and the
 * batch-norm backward's two sums.
 *
 * Why: tfjs's wasm backend sums in float32, one value after the other (its Sum and Mean transpose the tensor
 * to [C, M] and run a sequential float32 loop), so a channel of M values loses up to M·2⁻²⁴ of its sum —
 * 802,816 values per channel at DenseNet-201's stem at 224², batch 64 — and every gradient downstream
 * inherits it. The cpu backend sums in JavaScript numbers (float64) but still forms Σdy·x − μ·Σdy in
 * float32, which cancels when |μ| ≫ σ. Here both backends take one sequential read of the tensor in place
 * (the wasm heap, the cpu backend's array; no copy, no full-size temporary) with float64 accumulators, and
 * the backward sums Σdy·(x − μ) directly, so nothing cancels.
 *
 * Other backends: the shape-only `meta` backends allocate exactly the outputs the float64 pass allocates
 * (so memory predictions stay exact), and any other backend (tensorflow, webgl) uses tfjs reductions.
 */
import * as tf from '@tensorflow/tfjs';
import { backendTraits } from '../backend/traits.js';
import { float32Values, valuesInPlace } from '../backend/values.js';
import { wasmGradSums, wasmShiftedSums, type EmscriptenWasm } from '../backend/wasm/sums/channel-sums.js';
import { replicaGroup, type ReplicaGroup } from './replicas.js';

/** Mean and biased variance per channel (the last axis), over the whole batch (every replica's shard). */
export interface ChannelMoments {
  mean: tf.Tensor1D;
  variance: tf.Tensor1D;
  /** Values per channel they were taken over (the whole batch's). */
  count: number;
}

/** The two sums of the batch-norm backward, per channel: Σdy and Σdy·(x − μ). */
export interface ChannelGradSums {
  /** This replica's sums: the BN parameters' gradients (the data-parallel gradient sum adds the replicas'). */
  sumDy: tf.Tensor1D;
  sumDyCentered: tf.Tensor1D;
  /** The whole batch's sums, which the input gradient needs; the same tensors as above without replicas. */
  total: { sumDy: tf.Tensor1D; sumDyCentered: tf.Tensor1D; count: number };
}

/**
 * Chooses the reduction path: 'float64' reads values in place; 'shape' only allocates the outputs (meta
 * backends); 'ops' uses tfjs reductions. `setChannelSumsPath('ops')` forces the old float32 reductions on
 * every backend (A/B comparisons and error measurements only); `undefined` restores the automatic choice.
 */
export type ChannelSumsPath = 'float64' | 'shape' | 'ops';
let forcedPath: ChannelSumsPath | undefined;

export function setChannelSumsPath(path: ChannelSumsPath | undefined): void {
  if (path !== undefined && path !== 'float64' && path !== 'shape' && path !== 'ops') {
    throw new Error(`setChannelSumsPath: path must be 'float64', 'shape', 'ops' or undefined, got ${JSON.stringify(path)}`);
  }
  forcedPath = path;
}

/** The parts of tfjs-backend-wasm's BackendWasm read here. */
interface WasmBackendLike {
  wasm: EmscriptenWasm & { HEAPU8: Uint8Array };
  dataIdMap: { get(dataId: object): { memoryOffset: number } | undefined };
}

function pathFor(tensors: tf.Tensor[]): ChannelSumsPath {
  if (forcedPath === 'ops') return 'ops';
  const traits = backendTraits();
  if (!traits.computes) return 'shape';
  if (traits.valuesInPlace !== null && tensors.every((t) => t.dtype === 'float32')) return 'float64';
  return 'ops';
}

/** The wasm backend and the byte offset of `t` on its heap, or null (another backend, or not on the heap). */
function onWasmHeap(t: tf.Tensor): { wasm: EmscriptenWasm; offset: number } | null {
  if (backendTraits().valuesInPlace !== 'wasm-heap' || t.dtype !== 'float32') return null;
  const backend = tf.backend() as unknown as WasmBackendLike;
  const data = backend.dataIdMap.get(t.dataId as object);
  return data ? { wasm: backend.wasm, offset: data.memoryOffset >>> 0 } : null;
}

/** shiftedSums of a tensor's values: our wasm module on the wasm heap, else JavaScript over float32Values. */
function shiftedSumsOf(x: tf.Tensor, c: number): { shift: Float64Array; s1: Float64Array; s2: Float64Array } {
  const heap = onWasmHeap(x);
  return heap ? wasmShiftedSums(heap.wasm, heap.offset, x.size / c, c) : shiftedSums(float32Values(x), c);
}

/** Σdy and Σdy·(x − center) per channel: our wasm module on the wasm heap, else JavaScript. */
function gradSumsOf(dy: tf.Tensor, x: tf.Tensor, center: Float64Array, c: number): { s1: Float64Array; s2: Float64Array } {
  const gHeap = onWasmHeap(dy);
  const xHeap = onWasmHeap(x);
  if (gHeap && xHeap) return wasmGradSums(gHeap.wasm, gHeap.offset, xHeap.offset, center, x.size / c, c);
  const g = float32Values(dy);
  const v = float32Values(x);
  const s1 = new Float64Array(c);
  const s2 = new Float64Array(c);
  for (let base = 0; base < v.length; base += c) {
    for (let j = 0; j < c; j++) {
      const d = g[base + j]!;
      s1[j] = s1[j]! + d;
      s2[j] = s2[j]! + d * (v[base + j]! - center[j]!);
    }
  }
  return { s1, s2 };
}


function channels(t: tf.Tensor): number {
  return t.shape[t.shape.length - 1] ?? 1;
}

function checkChannelTensor(t: tf.Tensor, label: string): void {
  if (t.rank < 2) throw new Error(`${label} must have rank ≥ 2 (channels last), got shape [${t.shape.join(', ')}]`);
  if (t.size === 0) throw new Error(`${label} must not be empty, got shape [${t.shape.join(', ')}]`);
}

function toTensor(values: Float64Array): tf.Tensor1D {
  return tf.tensor1d(Float32Array.from(values));
}

/** What a shape-only backend gets: an output made the way the float64 pass makes it (one upload of C values). */
function placeholder(c: number): tf.Tensor1D {
  return tf.tensor1d(new Float32Array(c));
}

/**
 * Per-channel mean and biased variance of `x`. The float64 pass shifts every value by the channel's first
 * value (so Σ(x − k)² − (Σ(x − k))²/M does not cancel even when |μ| ≫ σ).
 */
export function channelMoments(x: tf.Tensor): ChannelMoments {
  checkChannelTensor(x, 'channelMoments: x');
  const c = channels(x);
  const count = x.size / c;
  const group = replicaGroup();
  const path = pathFor([x]);
  if (path === 'shape') return { mean: placeholder(c), variance: placeholder(c), count };
  if (group) return syncedMoments(x, c, group);
  const inPlace = path === 'float64' && (onWasmHeap(x) !== null || valuesInPlace(x) !== null);
  if (!inPlace) {
    const axes = x.shape.slice(0, -1).map((_, i) => i);
    const { mean, variance } = tf.moments(x, axes);
    return { mean: mean as tf.Tensor1D, variance: variance as tf.Tensor1D, count };
  }
  const { shift, s1, s2 } = shiftedSumsOf(x, c);
  const mean = new Float64Array(c);
  const variance = new Float64Array(c);
  for (let j = 0; j < c; j++) {
    const d = s1[j]! / count;
    mean[j] = shift[j]! + d;
    variance[j] = Math.max(0, s2[j]! / count - d * d);
  }
  return { mean: toTensor(mean), variance: toTensor(variance), count };
}

/**
 * One read of `v` ([M, c] row-major): per-channel Σ(x − k) and Σ(x − k)² with k the channel's first value, so
 * that Σ(x − k)² − (Σ(x − k))²/M does not cancel even when |μ| ≫ σ.
 */
function shiftedSums(v: Float32Array, c: number): { shift: Float64Array; s1: Float64Array; s2: Float64Array } {
  const shift = new Float64Array(c);
  for (let j = 0; j < c; j++) shift[j] = v[j]!;
  const s1 = new Float64Array(c);
  const s2 = new Float64Array(c);
  for (let base = 0; base < v.length; base += c) {
    for (let j = 0; j < c; j++) {
      const d = v[base + j]! - shift[j]!;
      s1[j] = s1[j]! + d;
      s2[j] = s2[j]! + d * d;
    }
  }
  return { shift, s1, s2 };
}

/**
 * The whole batch's moments from every replica's (count, mean, M2), combined in rank order with Chan et al.'s
 * pairwise update (no cancellation, and the same bits on every replica).
 */
function syncedMoments(x: tf.Tensor, c: number, group: ReplicaGroup): ChannelMoments {
  const m = x.size / c;
  const { shift, s1, s2 } = shiftedSumsOf(x, c);
  const packed = new Float64Array(1 + 2 * c);
  packed[0] = m;
  for (let j = 0; j < c; j++) {
    const d = s1[j]! / m;
    packed[1 + j] = shift[j]! + d;
    packed[1 + c + j] = Math.max(0, s2[j]! - s1[j]! * d);
  }
  const parts = group.startAllGather(packed)();
  let n = 0;
  const mean = new Float64Array(c);
  const m2 = new Float64Array(c);
  for (const part of parts) {
    const nb = part[0]!;
    const total = n + nb;
    for (let j = 0; j < c; j++) {
      const delta = part[1 + j]! - mean[j]!;
      mean[j] = mean[j]! + (delta * nb) / total;
      m2[j] = m2[j]! + part[1 + c + j]! + (delta * delta * n * nb) / total;
    }
    n = total;
  }
  const variance = new Float64Array(c);
  for (let j = 0; j < c; j++) variance[j] = m2[j]! / n;
  return { mean: toTensor(mean), variance: toTensor(variance), count: n };
}

/**
 * Per-channel Σdy and Σdy·(x − mean) for equally shaped `dy` and `x` and a per-channel `mean`. `meanwhile`,
 * work that needs none of these sums, runs once in every case: with replicas, after this replica has published
 * its sums and before it waits for the others' (the time a replica would spend waiting for slower ones).
 */
export function channelGradSums(dy: tf.Tensor, x: tf.Tensor, mean: tf.Tensor1D, meanwhile: () => void = () => undefined): ChannelGradSums {
  checkChannelTensor(x, 'channelGradSums: x');
  if (dy.shape.join() !== x.shape.join()) {
    throw new Error(`channelGradSums: dy [${dy.shape.join(', ')}] must have the shape of x [${x.shape.join(', ')}]`);
  }
  const c = channels(x);
  if (mean.size !== c) throw new Error(`channelGradSums: mean must have ${c} values (the channels of x), got ${mean.size}`);
  const count = x.size / c;
  const path = pathFor([dy, x, mean]);
  const local = (sumDy: tf.Tensor1D, sumDyCentered: tf.Tensor1D): ChannelGradSums => {
    meanwhile();
    return { sumDy, sumDyCentered, total: { sumDy, sumDyCentered, count } };
  };
  if (path === 'shape') return local(placeholder(c), placeholder(c));
  const group = replicaGroup();
  const inPlace = (t: tf.Tensor) => onWasmHeap(t) !== null || valuesInPlace(t) !== null;
  if (!group && !(path === 'float64' && inPlace(dy) && inPlace(x) && inPlace(mean))) {
    const sums = tf.tidy(() => {
      const axes = x.shape.slice(0, -1).map((_, i) => i);
      const sumDy = tf.sum(dy, axes) as tf.Tensor1D;
      const sumDyX = tf.sum(tf.mul(dy, x), axes);
      return { sumDy, sumDyCentered: tf.sub(sumDyX, tf.mul(mean, sumDy)) as tf.Tensor1D };
    });
    return local(sums.sumDy, sums.sumDyCentered);
  }
  const center = Float64Array.from(float32Values(mean));
  const { s1, s2 } = gradSumsOf(dy, x, center, c);
  if (!group) return local(toTensor(s1), toTensor(s2));
  // μ is the whole batch's (channelMoments gathered it), so the replicas' sums simply add up, in rank order.
  const packed = new Float64Array(1 + 2 * c);
  packed[0] = count;
  packed.set(s1, 1);
  packed.set(s2, 1 + c);
  const collect = group.startAllGather(packed);
  meanwhile();
  const sum = new Float64Array(1 + 2 * c);
  for (const part of collect()) for (let i = 0; i < sum.length; i++) sum[i] = sum[i]! + part[i]!;
  return {
    sumDy: toTensor(s1),
    sumDyCentered: toTensor(s2),
    total: { sumDy: toTensor(sum.subarray(1, 1 + c)), sumDyCentered: toTensor(sum.subarray(1 + c)), count: sum[0]! },
  };
}
