/**
 * PyTorch interop: torchvision checkpoints (pretrained ImageNet weights included) load into our DenseNets,
 * and a trained model saves as a state_dict that `torchvision.models.densenet121(...)` loads with
 * `load_state_dict(strict=True)`. Names and layouts: ./torchvision-names.ts.
 */
import * as tf from '@tensorflow/tfjs';
import { UsageError } from '../util/errors.js';
import { silentLogger, type Logger } from '../util/logger.js';
import { boolean, knownKeys, logger as validateLogger, plainObject } from '../util/validate.js';
import { encodeSafetensors, parseSafetensors, writeSafetensors } from './safetensors.js';
import { importNodeBuiltin } from '../util/node.js';
import {
  CLASSIFIER_PREFIX,
  describe,
  exportTorchvisionStateDict,
  isBatchesTracked,
  LEGACY_NAME,
  listNames,
  shapeText,
  toTfjsLayout,
  torchShape,
  torchvisionSlots,
  type TorchvisionStateDict,
  type TorchvisionTensor,
} from './torchvision-names.js';


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

// ---------------------------------------------------------------- export / save

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

/**
 * The same safetensors file as saveTorchvisionWeights writes, as bytes: for a browser (a download) or any
 * other place that is not a local file.
 */
export function torchvisionSafetensorsBytes(model: tf.LayersModel): Uint8Array {
  return encodeSafetensors(exportTorchvisionStateDict(model), { format: 'pt' });
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
    // node:fs at call time: bytes in memory (a browser's) need no file system.
    const { readFile } = await importNodeBuiltin<typeof import('node:fs/promises')>('node:fs/promises', `reading '${source}'`);
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
  const given = plainObject('loadTorchvisionWeights: options', options) as LoadTorchvisionOptions;
  knownKeys('loadTorchvisionWeights', given, ['strict', 'skipClassifier', 'logger']);
  return {
    strict: boolean('loadTorchvisionWeights: strict', given.strict) ?? true,
    skipClassifier: boolean('loadTorchvisionWeights: skipClassifier', given.skipClassifier) ?? false,
    logger: validateLogger('loadTorchvisionWeights: logger', given.logger) ?? silentLogger,
  };
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
