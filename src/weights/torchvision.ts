/**
 * PyTorch interop: torchvision checkpoints (pretrained ImageNet weights included) load into our DenseNets,
 * and a trained model saves as a state_dict that `torchvision.models.densenet121(...)` loads with
 * `load_state_dict(strict=True)`. Names and layouts: ./torchvision-names.ts.
 */
import * as tf from '@tensorflow/tfjs';
import { UsageError } from '../util/errors.js';
import { silentLogger, type Logger } from '../util/logger.js';
import { boolean, knownKeys, logger as validateLogger, plainObject } from '../util/validate.js';
import { encodeSafetensors, writeSafetensors } from './safetensors.js';
import { importNodeBuiltin } from '../util/node.js';
import { checkHashPrefix, parseStateDict } from './state-dict.js';
import {
  CLASSIFIER_PREFIX,
  describe,
  exportTorchvisionStateDictAsync,
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
  /**
   * Check a file whose name carries a SHA-256 prefix, as torchvision's do (`densenet121-a639ec97.pth`),
   * against its bytes (default true); a mismatch is an error. Only for a source given as a path.
   */
  checkHash?: boolean;
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
  /** Source names that were renamed: the legacy `norm.1`/`conv.1` style, or a leading `module.`. */
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
  await writeSafetensors(path, await exportTorchvisionStateDictAsync(model), { format: 'pt' });
}

/**
 * The same safetensors file as saveTorchvisionWeights writes, as bytes: for a browser (a download) or any
 * other place that is not a local file.
 */
export async function torchvisionSafetensorsBytes(model: tf.LayersModel): Promise<Uint8Array> {
  return encodeSafetensors(await exportTorchvisionStateDictAsync(model), { format: 'pt' });
}

// ---------------------------------------------------------------- load

/**
 * Reads a weights file (safetensors, or a PyTorch `.pth`/`.pt` checkpoint in the zip or legacy format: told
 * by content) into name → tensor in PyTorch layout, num_batches_tracked left out. With `checkHash` (the
 * default), a name carrying a SHA-256 prefix (`densenet121-a639ec97.pth`) is checked against the bytes.
 */
export async function readTorchvisionStateDict(path: string, options: { checkHash?: boolean } = {}): Promise<Map<string, TorchvisionTensor>> {
  if (typeof path !== 'string' || path.length === 0) throw new UsageError(`readTorchvisionStateDict: path must be a non-empty string, got ${describe(path)}`);
  let bytes: Uint8Array;
  // node:fs at call time: bytes in memory (a browser's) need no file system.
  const { readFile } = await importNodeBuiltin<typeof import('node:fs/promises')>('node:fs/promises', `reading '${path}'`);
  try {
    bytes = await readFile(path);
  } catch (error) {
    const reason = error instanceof Error ? error.message : String(error);
    throw new UsageError(`weights file '${path}': cannot be read (${reason})`);
  }
  if (options.checkHash ?? true) await checkHashPrefix(bytes, path);
  return parseStateDict(bytes, path).tensors;
}

async function readSource(source: string | Uint8Array | TorchvisionStateDict, checkHash: boolean): Promise<Map<string, TorchvisionTensor>> {
  if (typeof source === 'string') return readTorchvisionStateDict(source, { checkHash });
  if (source instanceof Uint8Array) return parseStateDict(source, '<buffer>').tensors;
  if (source instanceof Map) {
    const out = new Map<string, TorchvisionTensor>();
    for (const [name, tensor] of source as ReadonlyMap<unknown, unknown>) {
      if (typeof name !== 'string') throw new UsageError(`loadTorchvisionWeights: state_dict keys must be strings, got ${describe(name)}`);
      if (isBatchesTracked(name)) continue;
      out.set(name, checkTensor(name, tensor));
    }
    return out;
  }
  throw new UsageError(
    `loadTorchvisionWeights: source must be a weights file path (safetensors or a PyTorch .pth), its bytes (Uint8Array) or a Map of name → {shape, data}, got ${describe(source)}`,
  );
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

/**
 * Brings every source's names to torchvision's current ones. torchvision's and timm's DenseNets use the same
 * state_dict names (timm/models/densenet.py in huggingface/pytorch-image-models: its BatchNormAct2d
 * subclasses nn.BatchNorm2d, so `features.denseblock1.denselayer1.norm1.weight` … `classifier.bias` are
 * torchvision's), so the mapping is the one both libraries apply when loading:
 *  - legacy `denselayerN.norm.1.weight` → `denselayerN.norm1.weight` (torchvision's `_load_state_dict` and
 *    timm's `_filter_torchvision_pretrained`, the same regular expression, LEGACY_NAME);
 *  - a leading `module.` (nn.DataParallel / DistributedDataParallel) dropped, as timm's `clean_state_dict`
 *    does (timm/models/_helpers.py).
 * num_batches_tracked is dropped.
 */
function normaliseNames(tensors: Map<string, TorchvisionTensor>): { tensors: Map<string, TorchvisionTensor>; renamed: number } {
  const out = new Map<string, TorchvisionTensor>();
  const origin = new Map<string, string>();
  let renamed = 0;
  for (const [name, tensor] of tensors) {
    if (isBatchesTracked(name)) continue;
    const unwrapped = name.startsWith('module.') ? name.slice('module.'.length) : name;
    const legacy = LEGACY_NAME.exec(unwrapped);
    const target = legacy ? `${legacy[1]}${legacy[2]}` : unwrapped;
    const earlier = origin.get(target);
    if (earlier !== undefined) {
      throw new UsageError(`loadTorchvisionWeights: '${earlier}' and '${name}' both give '${target}' (legacy or 'module.'-prefixed and current names of one tensor)`);
    }
    origin.set(target, name);
    out.set(target, tensor);
    if (target !== name) renamed += 1;
  }
  return { tensors: out, renamed };
}

function checkOptions(options: unknown): Required<LoadTorchvisionOptions> {
  const given = plainObject('loadTorchvisionWeights: options', options) as LoadTorchvisionOptions;
  knownKeys('loadTorchvisionWeights', given, ['strict', 'skipClassifier', 'checkHash', 'logger']);
  return {
    checkHash: boolean('loadTorchvisionWeights: checkHash', given.checkHash) ?? true,
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
  const { strict, skipClassifier, checkHash, logger } = checkOptions(options);
  const slots = torchvisionSlots(model);
  const { tensors, renamed } = normaliseNames(await readSource(source, checkHash));

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
    // timm's deep-stem variants (densenetblur121d, densenet264d) have a three-convolution stem torchvision lacks.
    const deepStem = unexpected.some((name) => /^features\.(conv|norm)[12]\./.test(name));
    const hint = deepStem ? ' (features.conv1/conv2: a deep-stem DenseNet such as timm\'s densenetblur121d or densenet264d, which torchvision\'s architecture does not have)' : '';
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
