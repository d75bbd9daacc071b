/**
 * One training step of a torchvision DenseNet measured against a float64 reference (fixtures from
 * scripts/make_float64_fixtures.py), in the measures whose PyTorch float32 values the fixtures carry.
 * Shared by test/float64-parity.test.ts and scripts/numerics-table.ts.
 */
import { readFile, stat } from 'node:fs/promises';
import * as tf from '@tensorflow/tfjs';
import { createDenseNet } from '../../src/layers/index.js';
import type { MemoryMode } from '../../src/layers/config.js';
import { readSafetensors, type SafetensorsFile } from '../../src/weights/safetensors.js';
import { loadTorchvisionWeights } from '../../src/weights/torchvision.js';
import { exportTorchvisionStateDict, type TorchvisionTensor } from '../../src/weights/torchvision-names.js';
import { deterministicTorchvisionStateDict } from './deterministic-weights.js';
import { modeOptions } from './models.js';
import { torchvisionStep, type TorchvisionArchitecture } from './torchvision-step.js';

export type Architecture = TorchvisionArchitecture;

/** Errors against float64, as scripts/make_float64_fixtures.py `measures` defines them. */
export interface Float64Errors {
  /** max |a − b| / max |b| of the eval-mode logits. */
  eval_logits: number;
  train_logits: number;
  /** |a − b| / |b| of the loss. */
  loss: number;
  /** ‖all gradients − exact‖ / ‖exact‖ over every gradient tensor together. */
  grad_all: number;
  /** max over tensors of ‖g − exact‖ / max(‖exact‖, 1e-2 · the largest exact gradient norm). */
  grad_worst: number;
  grad_worst_name: string;
  /** max over running statistics tensors of max |a − b| / max |b|. */
  running: number;
  /** With `perTensor`: each gradient's [‖g − exact‖, ‖exact‖], by torchvision name (for localising). */
  tensors?: Record<string, [number, number]>;
}

export const MEASURES = ['eval_logits', 'train_logits', 'loss', 'grad_all', 'grad_worst', 'running'] as const;

export interface Float64Fixture {
  name: string;
  config: {
    architecture: Architecture; image_size: number; batch: number; torch_float32_errors: Float64Errors;
    /** --densenet121 --seed: the weights' index offset is 1000·seed when no weights file is given. */
    seed?: number;
    state_dict?: [string, number[]][];
    /** The reference holds only the gradients whose names match this regex (and PyTorch's errors are over those). */
    grads_kept?: string;
  };
  reference: SafetensorsFile;
  /** The weights: a safetensors path, or a state_dict in memory. */
  weights: string | Map<string, TorchvisionTensor>;
}

export async function loadFloat64Fixture(dir: string, name: string, weights?: Map<string, TorchvisionTensor>): Promise<Float64Fixture> {
  const config = JSON.parse(await readFile(`${dir}/config.json`, 'utf8')) as Float64Fixture['config'];
  const reference = await readSafetensors(`${dir}/reference.safetensors`);
  const file = `${dir}/weights.safetensors`;
  const hasFile = await stat(file).then(() => true, () => false);
  if (!weights && !hasFile && config.state_dict) weights = deterministicTorchvisionStateDict(config.state_dict, 1000 * (config.seed ?? 0));
  return { name, config, reference, weights: weights ?? file };
}

function ref(fixture: Float64Fixture, key: string): Float32Array {
  const tensor = fixture.reference.tensors.get(key);
  if (!tensor) throw new Error(`fixture ${fixture.name} has no '${key}'`);
  return tensor.data;
}

function maxRel(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) throw new Error(`length mismatch ${a.length} vs ${b.length}`);
  let diff = 0;
  let scale = 0;
  for (let i = 0; i < a.length; i++) {
    diff = Math.max(diff, Math.abs(a[i]! - b[i]!));
    scale = Math.max(scale, Math.abs(b[i]!));
  }
  return diff / Math.max(scale, 1e-30);
}

function sumSquares(v: ArrayLike<number>): number {
  let s = 0;
  for (let i = 0; i < v.length; i++) s += v[i]! * v[i]!;
  return s;
}

function diffSquares(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) throw new Error(`length mismatch ${a.length} vs ${b.length}`);
  let s = 0;
  for (let i = 0; i < a.length; i++) s += (a[i]! - b[i]!) ** 2;
  return s;
}

export async function buildFixtureModel(fixture: Float64Fixture, mode: MemoryMode): Promise<tf.LayersModel> {
  const arch = fixture.config.architecture;
  const size = fixture.config.image_size;
  const model = createDenseNet({
    growthRate: arch.growth_rate,
    blockConfig: arch.block_config,
    numInitFeatures: arch.num_init_features,
    bnSize: arch.bn_size,
    dropRate: arch.drop_rate,
    numClasses: arch.num_classes,
    inputShape: [size, size, 3],
    seed: 11,
    ...modeOptions(mode),
  });
  await loadTorchvisionWeights(model, fixture.weights);
  return model;
}

/** Eval forward, then one training forward + backward from the same state, measured against float64. */
export function float64Errors(fixture: Float64Fixture, model: tf.LayersModel, perTensor = false): Float64Errors {
  const input = fixture.reference.tensors.get('input_nchw')!;
  const x = tf.tidy(() => tf.transpose(tf.tensor4d(input.data, input.shape as [number, number, number, number]), [0, 2, 3, 1]));
  const labels = Array.from(ref(fixture, 'labels'), (v) => Math.round(v));
  const y = tf.oneHot(tf.tensor1d(labels, 'int32'), fixture.config.architecture.num_classes);
  const { evalLogits, trainLogits, loss, grads } = torchvisionStep(model, x, y);
  tf.dispose([x, y]);
  const exactLoss = ref(fixture, 'loss')[0]!;
  const kept = fixture.config.grads_kept ? new RegExp(fixture.config.grads_kept) : null;
  const ours = new Map([...grads].filter(([name]) => !kept || kept.test(name)).map(([name, grad]) => [name, grad.data]));

  const exactNorms = new Map<string, number>();
  for (const [key, tensor] of fixture.reference.tensors) {
    if (key.startsWith('grad.')) exactNorms.set(key.slice(5), Math.sqrt(sumSquares(tensor.data)));
  }
  if (exactNorms.size !== ours.size) throw new Error(`fixture ${fixture.name} has ${exactNorms.size} gradients, the model ${ours.size}`);
  const largest = Math.max(...exactNorms.values());
  let diff2 = 0;
  let norm2 = 0;
  let worst = 0;
  let worstName = '';
  const tensors: Record<string, [number, number]> = {};
  for (const [name, norm] of exactNorms) {
    const got = ours.get(name);
    if (!got) throw new Error(`no gradient for ${name}`);
    const d2 = diffSquares(got, ref(fixture, `grad.${name}`));
    diff2 += d2;
    norm2 += norm * norm;
    if (perTensor) tensors[name] = [Math.sqrt(d2), norm];
    const err = Math.sqrt(d2) / Math.max(norm, 1e-2 * largest);
    if (err > worst) {
      worst = err;
      worstName = name;
    }
  }

  const after = exportTorchvisionStateDict(model);
  let running = 0;
  let runningCount = 0;
  for (const [key, tensor] of fixture.reference.tensors) {
    if (!key.startsWith('running_after.')) continue;
    const name = key.slice('running_after.'.length);
    const mine = after.get(name);
    if (!mine) throw new Error(`model has no ${name}`);
    running = Math.max(running, maxRel(mine.data, tensor.data));
    runningCount += 1;
  }
  if (runningCount === 0) throw new Error(`fixture ${fixture.name} has no running statistics`);

  return {
    eval_logits: maxRel(evalLogits, ref(fixture, 'eval_logits')),
    train_logits: maxRel(trainLogits, ref(fixture, 'train_logits')),
    loss: Math.abs(loss - exactLoss) / Math.abs(exactLoss),
    grad_all: Math.sqrt(diff2 / norm2),
    grad_worst: worst,
    grad_worst_name: worstName,
    running,
    ...(perTensor ? { tensors } : {}),
  };
}
