/**
 * PyTorch interop: our DenseNets under torchvision's state_dict names and layouts, so that torchvision
 * checkpoints (pretrained ImageNet weights included) load into a model and a trained model loads back
 * into `torchvision.models.densenet121(...)` with `load_state_dict(strict=True)`.
 *
 * Layouts: torchvision stores convolutions as [out, in, kh, kw] and linear weights as [out, in]; tfjs
 * keeps [kh, kw, in, out] and [in, out]. BatchNorm vectors are the same in both.
 */
import { readFile } from 'node:fs/promises';
import * as tf from '@tensorflow/tfjs';
import { DenseBlock } from '../layers/dense-block.js';
import { FinalNorm } from '../layers/head.js';
import type { NormWeights } from '../layers/norm.js';
import { Stem } from '../layers/stem.js';
import { Transition } from '../layers/transition.js';
import { UsageError } from '../util/errors.js';
import { silentLogger, type Logger } from '../util/logger.js';
import { parseSafetensors, writeSafetensors } from './safetensors.js';

/** One state_dict entry: PyTorch shape, float32 values in row-major PyTorch layout. */
export interface TorchvisionTensor {
  shape: readonly number[];
  data: Float32Array;
}

/** A torchvision state_dict: name → tensor (PyTorch layout). */
export type TorchvisionStateDict = ReadonlyMap<string, TorchvisionTensor>;

export interface LoadTorchvisionOptions {
  /**
   * Demand that every model weight is in the source and every source tensor is used (default true,
   * as PyTorch's `load_state_dict`). Non-strict loads report what was missing or unused instead.
   */
  strict?: boolean;
  /**
   * Keep the model's own classifier and ignore the source's `classifier.*` (default false): for
   * fine-tuning from ImageNet weights to another number of classes.
   */
  skipClassifier?: boolean;
  /** Receives the warnings (skipped classifier, tensors missing or unused in a non-strict load). */
  logger?: Logger;
}

export interface LoadTorchvisionReport {
  /** torchvision names written into the model. */
  loaded: string[];
  /** Model weights the source lacked (always empty in a strict load). */
  missing: string[];
  /** Source tensors that were not used (always empty in a strict load; skipped classifier excluded). */
  unexpected: string[];
  /** Source names in the legacy `norm.1`/`conv.1` style that were renamed. */
  renamedLegacy: number;
}

type Layout = 'conv' | 'linear' | 'vector';

interface Slot {
  variable: tf.LayerVariable;
  layout: Layout;
}

const CLASSIFIER_PREFIX = 'classifier.';
const SHOWN_NAMES = 5;
/** torchvision's own rename for checkpoints saved before its modules dropped the dots (`norm.1` → `norm1`). */
const LEGACY_NAME = /^(.*denselayer\d+\.(?:norm|relu|conv))\.((?:[12])\.(?:weight|bias|running_mean|running_var))$/;
const NUM_BATCHES_TRACKED = 'num_batches_tracked';

function describe(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return `an array of length ${value.length}`;
  if (typeof value === 'string') return `the string ${JSON.stringify(value.length > 40 ? `${value.slice(0, 40)}...` : value)}`;
  if (typeof value === 'object') return `an object (${value.constructor?.name ?? 'no prototype'})`;
  return `${typeof value} ${String(value)}`;
}

function listNames(names: readonly string[]): string {
  const shown = names.slice(0, SHOWN_NAMES).join(', ');
  return names.length > SHOWN_NAMES ? `${shown} and ${names.length - SHOWN_NAMES} more` : shown;
}

function shapeText(shape: readonly number[]): string {
  return `[${shape.join(', ')}]`;
}

function isBatchesTracked(name: string): boolean {
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
function torchvisionSlots(model: tf.LayersModel): Map<string, Slot> {
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
function torchShape(shape: readonly number[], layout: Layout): number[] {
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

function toTfjsLayout(data: Float32Array, torch: readonly number[], layout: Layout): Float32Array {
  if (layout === 'conv') return convToTfjs(data, torch);
  if (layout === 'linear') return transpose2d(data, torch[0]!, torch[1]!);
  return data.slice();
}

function toTorchLayout(data: Float32Array, tfjs: readonly number[], layout: Layout): Float32Array {
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

// ---------------------------------------------------------------- export / save

/**
 * The model's torchvision state_dict: name → {shape (PyTorch layout), data}, in torchvision's order,
 * without num_batches_tracked (PyTorch fills it in when a plain dict is loaded).
 */
export function exportTorchvisionStateDict(model: tf.LayersModel): Map<string, { shape: number[]; data: Float32Array }> {
  const out = new Map<string, { shape: number[]; data: Float32Array }>();
  for (const [name, { variable, layout }] of torchvisionSlots(model)) {
    const shape = variable.shape as number[];
    const values = variable.read().dataSync() as Float32Array;
    out.set(name, { shape: torchShape(shape, layout), data: toTorchLayout(values, shape, layout) });
  }
  return out;
}

/**
 * Writes the model as a torchvision state_dict in safetensors (F32, atomically). PyTorch loads it with
 * `model.load_state_dict(safetensors.torch.load_file(path), strict=True)`: num_batches_tracked is left out
 * because BatchNorm adds it itself when loading a plain dict (one without version metadata).
 */
export async function saveTorchvisionWeights(model: tf.LayersModel, path: string): Promise<void> {
  if (typeof path !== 'string' || path.length === 0) {
    throw new UsageError(`saveTorchvisionWeights: path must be a non-empty string, got ${describe(path)}`);
  }
  await writeSafetensors(path, exportTorchvisionStateDict(model), { format: 'pt' });
}

// ---------------------------------------------------------------- load

/**
 * `safetensors.torch.save_file(model.state_dict())` stores num_batches_tracked as I64, which the
 * float-only reader rejects. Those entries are ignored anyway, so their header entries are relabelled as
 * F32 of the same byte length (keeping the buffer tiled as the reader demands) and dropped after parsing.
 */
function relabelBatchesTracked(bytes: Uint8Array): { bytes: Uint8Array; relabelled: boolean } {
  if (bytes.length < 8) return { bytes, relabelled: false };
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const headerLength = Number(view.getBigUint64(0, true));
  if (headerLength > bytes.length - 8) return { bytes, relabelled: false };
  let header: unknown;
  try {
    header = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(bytes.subarray(8, 8 + headerLength)));
  } catch {
    return { bytes, relabelled: false };
  }
  if (typeof header !== 'object' || header === null || Array.isArray(header)) return { bytes, relabelled: false };
  const entries = header as Record<string, unknown>;
  let relabelled = false;
  for (const [name, entry] of Object.entries(entries)) {
    if (!isBatchesTracked(name) || typeof entry !== 'object' || entry === null) continue;
    const { dtype, data_offsets: offsets } = entry as { dtype?: unknown; data_offsets?: unknown };
    if (dtype === 'F32' || dtype === 'F16' || dtype === 'BF16' || !Array.isArray(offsets) || offsets.length !== 2) continue;
    const [begin, end] = offsets as unknown[];
    if (typeof begin !== 'number' || typeof end !== 'number' || (end - begin) % 4 !== 0) continue;
    entries[name] = { dtype: 'F32', shape: [(end - begin) / 4], data_offsets: [begin, end] };
    relabelled = true;
  }
  if (!relabelled) return { bytes, relabelled };
  const text = new TextEncoder().encode(JSON.stringify(entries));
  const padded = text.length + ((8 - (text.length % 8)) % 8);
  const data = bytes.subarray(8 + headerLength);
  const out = new Uint8Array(8 + padded + data.length);
  new DataView(out.buffer).setBigUint64(0, BigInt(padded), true);
  out.set(text, 8);
  out.fill(0x20, 8 + text.length, 8 + padded);
  out.set(data, 8 + padded);
  return { bytes: out, relabelled };
}

async function readSource(source: string | Uint8Array | TorchvisionStateDict): Promise<Map<string, TorchvisionTensor>> {
  let bytes: Uint8Array;
  let fileName: string;
  if (typeof source === 'string') {
    try {
      bytes = await readFile(source);
    } catch (error) {
      const reason = error instanceof Error ? error.message : String(error);
      throw new UsageError(`safetensors file '${source}': cannot be read (${reason})`);
    }
    fileName = source;
  } else if (source instanceof Uint8Array) {
    bytes = source;
    fileName = '<buffer>';
  } else if (source instanceof Map) {
    const out = new Map<string, TorchvisionTensor>();
    for (const [name, tensor] of source as ReadonlyMap<unknown, unknown>) {
      if (typeof name !== 'string') throw new UsageError(`loadTorchvisionWeights: state_dict keys must be strings, got ${describe(name)}`);
      if (isBatchesTracked(name)) continue;
      out.set(name, checkTensor(name, tensor));
    }
    return out;
  } else {
    throw new UsageError(
      `loadTorchvisionWeights: source must be a safetensors file path, its bytes (Uint8Array) or a Map of name → {shape, data}, got ${describe(source)}`,
    );
  }
  const { bytes: readable } = relabelBatchesTracked(bytes);
  return new Map(parseSafetensors(readable, fileName).tensors);
}

function checkTensor(name: string, tensor: unknown): TorchvisionTensor {
  const where = `loadTorchvisionWeights: tensor '${name}'`;
  if (typeof tensor !== 'object' || tensor === null) throw new UsageError(`${where} must be {shape, data}, got ${describe(tensor)}`);
  const { shape, data } = tensor as { shape?: unknown; data?: unknown };
  if (!Array.isArray(shape) || !shape.every((d: unknown) => typeof d === 'number' && Number.isSafeInteger(d) && d >= 0)) {
    throw new UsageError(`${where} has shape ${JSON.stringify(shape)}; it must be an array of non-negative integers`);
  }
  if (!(data instanceof Float32Array)) throw new UsageError(`${where} has data ${describe(data)}; it must be a Float32Array`);
  const size = (shape as number[]).reduce((a, b) => a * b, 1);
  if (size !== data.length) throw new UsageError(`${where} has shape ${shapeText(shape as number[])} (${size} values) but ${data.length} values`);
  return { shape: shape as number[], data };
}

/** Renames legacy `denselayerN.norm.1.weight` entries and drops num_batches_tracked. */
function normaliseNames(tensors: Map<string, TorchvisionTensor>): { tensors: Map<string, TorchvisionTensor>; renamed: number } {
  const out = new Map<string, TorchvisionTensor>();
  const origin = new Map<string, string>();
  let renamed = 0;
  for (const [name, tensor] of tensors) {
    if (isBatchesTracked(name)) continue;
    const legacy = LEGACY_NAME.exec(name);
    const target = legacy ? `${legacy[1]}${legacy[2]}` : name;
    const earlier = origin.get(target);
    if (earlier !== undefined) {
      throw new UsageError(`loadTorchvisionWeights: '${earlier}' and '${name}' both give '${target}' (legacy and current names of one tensor)`);
    }
    origin.set(target, name);
    out.set(target, tensor);
    if (legacy) renamed += 1;
  }
  return { tensors: out, renamed };
}

function checkOptions(options: unknown): Required<LoadTorchvisionOptions> {
  if (options === null || typeof options !== 'object') {
    throw new UsageError(`loadTorchvisionWeights: options must be an object, got ${describe(options)}`);
  }
  const allowed = ['strict', 'skipClassifier', 'logger'];
  for (const key of Object.keys(options)) {
    if (!allowed.includes(key)) throw new UsageError(`loadTorchvisionWeights: unknown option '${key}'; allowed: ${allowed.join(', ')}`);
  }
  const { strict = true, skipClassifier = false, logger = silentLogger } = options as LoadTorchvisionOptions;
  for (const [key, value] of [['strict', strict], ['skipClassifier', skipClassifier]] as const) {
    if (typeof value !== 'boolean') throw new UsageError(`loadTorchvisionWeights: ${key} must be true or false, got ${describe(value)}`);
  }
  if (typeof logger !== 'object' || logger === null || typeof logger.warn !== 'function') {
    throw new UsageError(`loadTorchvisionWeights: logger must be a Logger ({info, warn}), got ${describe(logger)}`);
  }
  return { strict, skipClassifier, logger };
}

/**
 * Loads a torchvision DenseNet state_dict into one of our DenseNets: from a safetensors file path, its
 * bytes, or a Map of name → {shape, data} in PyTorch layout. Legacy `norm.1`-style names are accepted and
 * num_batches_tracked is ignored. Everything is validated before the first value is written, so a failed
 * load leaves the model untouched. Throws a UsageError naming the tensors that are missing, unexpected
 * (strict mode) or of the wrong shape (always, in PyTorch layout).
 */
export async function loadTorchvisionWeights(
  model: tf.LayersModel,
  source: string | Uint8Array | TorchvisionStateDict,
  options: LoadTorchvisionOptions = {},
): Promise<LoadTorchvisionReport> {
  const { strict, skipClassifier, logger } = checkOptions(options);
  const slots = torchvisionSlots(model);
  const { tensors, renamed } = normaliseNames(await readSource(source));

  const skipped = skipClassifier ? [...tensors.keys()].filter((name) => name.startsWith(CLASSIFIER_PREFIX)) : [];
  const wanted = [...slots.keys()].filter((name) => !(skipClassifier && name.startsWith(CLASSIFIER_PREFIX)));
  const missing = wanted.filter((name) => !tensors.has(name));
  const unexpected = [...tensors.keys()].filter((name) => !slots.has(name) && !skipped.includes(name));

  const mismatches: string[] = [];
  for (const name of wanted) {
    const tensor = tensors.get(name);
    if (!tensor) continue;
    const { variable, layout } = slots.get(name)!;
    const expected = torchShape(variable.shape as number[], layout);
    if (tensor.shape.length !== expected.length || tensor.shape.some((d, i) => d !== expected[i])) {
      mismatches.push(`'${name}' is ${shapeText(tensor.shape)} in the source, the model needs ${shapeText(expected)}`);
    }
  }
  const problems: string[] = [];
  if (mismatches.length > 0) {
    const hint = mismatches.some((m) => m.startsWith(`'${CLASSIFIER_PREFIX}`)) ? ' (to keep the model\'s own classifier, pass skipClassifier: true)' : '';
    problems.push(`shape mismatch (PyTorch layout) for ${mismatches.length} tensor(s): ${listNames(mismatches)}${hint}`);
  }
  if (strict && missing.length > 0) problems.push(`missing ${missing.length} tensor(s) the model needs: ${listNames(missing)}`);
  if (strict && unexpected.length > 0) {
    const prefixed = unexpected.every((name) => name.startsWith('module.'));
    const hint = prefixed ? " (names start with 'module.', as nn.DataParallel saves them: strip that prefix)" : '';
    problems.push(`unexpected ${unexpected.length} tensor(s) the model does not have: ${listNames(unexpected)}${hint}`);
  }
  if (problems.length > 0) {
    const where = typeof source === 'string' ? `'${source}'` : 'the state_dict';
    throw new UsageError(`loadTorchvisionWeights: cannot load ${where} into model '${model.name}': ${problems.join('; ')}`);
  }

  if (skipClassifier) {
    const own = slots.get('classifier.bias')!.variable.shape[0];
    const theirs = tensors.get('classifier.bias')?.shape[0];
    logger.warn(
      `loadTorchvisionWeights: kept the model's own classifier (${own} classes)` +
        (skipped.length > 0 ? `; ignored the source's ${skipped.join(', ')}${theirs !== undefined ? ` (${theirs} classes)` : ''}` : ''),
    );
  }
  if (missing.length > 0) logger.warn(`loadTorchvisionWeights: non-strict load left ${missing.length} model tensor(s) unchanged: ${listNames(missing)}`);
  if (unexpected.length > 0) logger.warn(`loadTorchvisionWeights: non-strict load ignored ${unexpected.length} source tensor(s): ${listNames(unexpected)}`);

  const loaded = wanted.filter((name) => tensors.has(name));
  // Layout conversion happens before any write so a failure there cannot leave the model half-loaded.
  const converted = loaded.map((name) => {
    const { variable, layout } = slots.get(name)!;
    const tensor = tensors.get(name)!;
    return { variable, shape: variable.shape as number[], data: toTfjsLayout(tensor.data, tensor.shape, layout) };
  });
  tf.tidy(() => {
    for (const { variable, shape, data } of converted) variable.write(tf.tensor(data, shape, 'float32'));
  });
  return { loaded, missing, unexpected, renamedLegacy: renamed };
}
