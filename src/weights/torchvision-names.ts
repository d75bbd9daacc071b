/**
 * Our DenseNets under torchvision's state_dict names and layouts: which variable each torchvision name is,
 * and the layout conversions between the two.
 *
 * Layouts: torchvision stores convolutions as [out, in, kh, kw] and linear weights as [out, in]; tfjs
 * keeps [kh, kw, in, out] and [in, out]. BatchNorm vectors are the same in both.
 */
import * as tf from '@tensorflow/tfjs';
import { DenseBlock } from '../layers/dense-block.js';
import { FinalNorm } from '../layers/head.js';
import type { NormWeights } from '../layers/norm.js';
import { Stem } from '../layers/stem.js';
import { Transition } from '../layers/transition.js';
import { UsageError } from '../util/errors.js';

/** One state_dict entry: PyTorch shape, float32 values in row-major PyTorch layout. */
export interface TorchvisionTensor {
  shape: readonly number[];
  data: Float32Array;
}

/** A torchvision state_dict: name → tensor (PyTorch layout). */
export type TorchvisionStateDict = ReadonlyMap<string, TorchvisionTensor>;

type Layout = 'conv' | 'linear' | 'vector';

interface Slot {
  variable: tf.LayerVariable;
  layout: Layout;
}

export const CLASSIFIER_PREFIX = 'classifier.';
export const SHOWN_NAMES = 5;
/** torchvision's own rename for checkpoints saved before its modules dropped the dots (`norm.1` → `norm1`). */
export const LEGACY_NAME = /^(.*denselayer\d+\.(?:norm|relu|conv))\.((?:[12])\.(?:weight|bias|running_mean|running_var))$/;
export const NUM_BATCHES_TRACKED = 'num_batches_tracked';

export function describe(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return `an array of length ${value.length}`;
  if (typeof value === 'string') return `the string ${JSON.stringify(value.length > 40 ? `${value.slice(0, 40)}...` : value)}`;
  if (typeof value === 'object') return `an object (${value.constructor?.name ?? 'no prototype'})`;
  return `${typeof value} ${String(value)}`;
}

export function listNames(names: readonly string[]): string {
  const shown = names.slice(0, SHOWN_NAMES).join(', ');
  return names.length > SHOWN_NAMES ? `${shown} and ${names.length - SHOWN_NAMES} more` : shown;
}

export function shapeText(shape: readonly number[]): string {
  return `[${shape.join(', ')}]`;
}

export function isBatchesTracked(name: string): boolean {
  return name === NUM_BATCHES_TRACKED || name.endsWith(`.${NUM_BATCHES_TRACKED}`);
}

// ---------------------------------------------------------------- name mapping

function addNorm(slots: Map<string, Slot>, prefix: string, norm: NormWeights): void {
  slots.set(`${prefix}.weight`, { variable: norm.gamma, layout: 'vector' });
  slots.set(`${prefix}.bias`, { variable: norm.beta, layout: 'vector' });
  slots.set(`${prefix}.running_mean`, { variable: norm.movingMean, layout: 'vector' });
  slots.set(`${prefix}.running_var`, { variable: norm.movingVariance, layout: 'vector' });
}

function notOurDenseNet(model: tf.LayersModel, why: string): never {
  const found = model.layers.map((layer) => `${layer.name}:${layer.getClassName()}`).join(', ');
  throw new UsageError(
    `model '${model.name}' is not a DenseNet built by createDenseNet/densenet121…: ${why}. ` +
      `Expected the layers stem → denseblock1 → transition1 → … → denseblockN → norm5 → classifier (Dense with bias); found: ${found}`,
  );
}

/** The mapping with each slot's layout, in torchvision's state_dict order. */
export function torchvisionSlots(model: tf.LayersModel): Map<string, Slot> {
  if (!(model instanceof tf.LayersModel)) {
    throw new UsageError(`torchvisionNames: model must be a tf.LayersModel, got ${describe(model)}`);
  }
  const layers = model.layers.filter((layer) => layer.getClassName() !== 'InputLayer');
  const slots = new Map<string, Slot>();
  const [stem, ...rest] = layers;
  if (!(stem instanceof Stem)) notOurDenseNet(model, 'the first layer after the input is not the DenseNet stem');
  const stemParts = stem.parts;
  slots.set('features.conv0.weight', { variable: stemParts.kernel, layout: 'conv' });
  addNorm(slots, 'features.norm0', stemParts.norm);

  let index = 0;
  let block = 0;
  // (dense block, transition)* dense block, then norm5 and the classifier.
  for (;;) {
    const layer = rest[index];
    if (!(layer instanceof DenseBlock)) notOurDenseNet(model, `layer ${index + 2} is not a dense block`);
    block += 1;
    layer.denseLayers.forEach((denseLayer, j) => {
      const prefix = `features.denseblock${block}.denselayer${j + 1}`;
      const { norm1, kernel1, norm2, kernel2 } = denseLayer.parts;
      addNorm(slots, `${prefix}.norm1`, norm1);
      slots.set(`${prefix}.conv1.weight`, { variable: kernel1, layout: 'conv' });
      addNorm(slots, `${prefix}.norm2`, norm2);
      slots.set(`${prefix}.conv2.weight`, { variable: kernel2, layout: 'conv' });
    });
    index += 1;
    const next = rest[index];
    if (!(next instanceof Transition)) break;
    const { norm, kernel } = next.parts;
    addNorm(slots, `features.transition${block}.norm`, norm);
    slots.set(`features.transition${block}.conv.weight`, { variable: kernel, layout: 'conv' });
    index += 1;
  }
  const final = rest[index];
  if (!(final instanceof FinalNorm)) notOurDenseNet(model, `dense block ${block} is followed by neither a transition nor the final norm`);
  addNorm(slots, 'features.norm5', final.parts.norm);
  const classifier = rest[index + 1];
  if (classifier === undefined || classifier.getClassName() !== 'Dense' || rest.length !== index + 2) {
    notOurDenseNet(model, 'the final norm is not followed by exactly one Dense classifier');
  }
  const kernel = classifier.weights.find((w) => w.shape.length === 2);
  const bias = classifier.weights.find((w) => w.shape.length === 1);
  if (!kernel || !bias || classifier.weights.length !== 2) {
    notOurDenseNet(model, `the classifier '${classifier.name}' must have a kernel and a bias`);
  }
  slots.set('classifier.weight', { variable: kernel, layout: 'linear' });
  slots.set('classifier.bias', { variable: bias, layout: 'vector' });

  // Any weight outside the mapping (an extra layer, a regulariser's variable) would be silently skipped.
  const mapped = new Set([...slots.values()].map((slot) => slot.variable));
  const unmapped = model.weights.filter((w) => !mapped.has(w));
  if (unmapped.length > 0 || mapped.size !== model.weights.length) {
    notOurDenseNet(model, `weights outside torchvision's DenseNet: ${listNames(unmapped.map((w) => w.originalName))}`);
  }
  return slots;
}

/**
 * Every torchvision state_dict name of the model (parameters and running statistics; not
 * num_batches_tracked) → the model's variable (tfjs layout), in torchvision's state_dict order.
 * Throws a UsageError for a model that is not one of this library's DenseNets.
 */
export function torchvisionNames(model: tf.LayersModel): Map<string, tf.LayerVariable> {
  return new Map([...torchvisionSlots(model)].map(([name, slot]) => [name, slot.variable]));
}

// ---------------------------------------------------------------- layouts

/** The PyTorch shape of a variable with the given tfjs shape. */
export function torchShape(shape: readonly number[], layout: Layout): number[] {
  if (layout === 'conv') return [shape[3]!, shape[2]!, shape[0]!, shape[1]!];
  if (layout === 'linear') return [shape[1]!, shape[0]!];
  return [...shape];
}

/** PyTorch [out, in, kh, kw] → tfjs [kh, kw, in, out]. */
function convToTfjs(data: Float32Array, [out, inC, kh, kw]: readonly number[]): Float32Array {
  const result = new Float32Array(data.length);
  let src = 0;
  for (let o = 0; o < out!; o++) {
    for (let i = 0; i < inC!; i++) {
      for (let y = 0; y < kh!; y++) {
        for (let x = 0; x < kw!; x++) result[((y * kw! + x) * inC! + i) * out! + o] = data[src++]!;
      }
    }
  }
  return result;
}

/** tfjs [kh, kw, in, out] → PyTorch [out, in, kh, kw]. */
function convToTorch(data: Float32Array, [kh, kw, inC, out]: readonly number[]): Float32Array {
  const result = new Float32Array(data.length);
  let src = 0;
  for (let y = 0; y < kh!; y++) {
    for (let x = 0; x < kw!; x++) {
      for (let i = 0; i < inC!; i++) {
        for (let o = 0; o < out!; o++) result[((o * inC! + i) * kh! + y) * kw! + x] = data[src++]!;
      }
    }
  }
  return result;
}

/** A row-major [rows, cols] matrix transposed (linear weights in either direction). */
function transpose2d(data: Float32Array, rows: number, cols: number): Float32Array {
  const result = new Float32Array(data.length);
  for (let r = 0; r < rows; r++) {
    for (let c = 0; c < cols; c++) result[c * rows + r] = data[r * cols + c]!;
  }
  return result;
}

export function toTfjsLayout(data: Float32Array, torch: readonly number[], layout: Layout): Float32Array {
  if (layout === 'conv') return convToTfjs(data, torch);
  if (layout === 'linear') return transpose2d(data, torch[0]!, torch[1]!);
  return data.slice();
}

export function toTorchLayout(data: Float32Array, tfjs: readonly number[], layout: Layout): Float32Array {
  if (layout === 'conv') return convToTorch(data, tfjs);
  if (layout === 'linear') return transpose2d(data, tfjs[0]!, tfjs[1]!);
  return data.slice();
}

/**
 * Converts values laid out like the variable `torchvisionName` of `model` (tfjs layout, e.g. a gradient)
 * into PyTorch's layout; returns the PyTorch shape too.
 */
export function toTorchvisionLayout(model: tf.LayersModel, torchvisionName: string, values: tf.Tensor): TorchvisionTensor {
  const slot = torchvisionSlots(model).get(torchvisionName);
  if (!slot) throw new UsageError(`toTorchvisionLayout: the model has no tensor named '${torchvisionName}'`);
  const shape = slot.variable.shape as number[];
  if (values.shape.length !== shape.length || values.shape.some((d, i) => d !== shape[i])) {
    throw new UsageError(`toTorchvisionLayout: values for '${torchvisionName}' have shape ${shapeText(values.shape)}, the variable ${shapeText(shape)}`);
  }
  return { shape: torchShape(shape, slot.layout), data: toTorchLayout(values.dataSync() as Float32Array, shape, slot.layout) };
}

/**
 * The model's torchvision state_dict: name → {shape (PyTorch layout), data}, in torchvision's order,
 * without num_batches_tracked (PyTorch fills it in when a plain dict is loaded).
 */
export function exportTorchvisionStateDict(model: tf.LayersModel): Map<string, { shape: number[]; data: Float32Array }> {
  return stateDictFrom(model, (variable) => variable.read().dataSync() as Float32Array);
}

/**
 * exportTorchvisionStateDict, reading the values asynchronously: what every backend supports (webgpu in Node
 * cannot read a GPU buffer synchronously). What saving uses.
 */
export async function exportTorchvisionStateDictAsync(model: tf.LayersModel): Promise<Map<string, { shape: number[]; data: Float32Array }>> {
  const values = new Map<tf.LayerVariable, Float32Array>();
  for (const { variable } of torchvisionSlots(model).values()) values.set(variable, (await variable.read().data()) as Float32Array);
  return stateDictFrom(model, (variable) => values.get(variable)!);
}

function stateDictFrom(model: tf.LayersModel, valuesOf: (variable: tf.LayerVariable) => Float32Array): Map<string, { shape: number[]; data: Float32Array }> {
  const out = new Map<string, { shape: number[]; data: Float32Array }>();
  for (const [name, { variable, layout }] of torchvisionSlots(model)) {
    const shape = variable.shape as number[];
    out.set(name, { shape: torchShape(shape, layout), data: toTorchLayout(valuesOf(variable), shape, layout) });
  }
  return out;
}
