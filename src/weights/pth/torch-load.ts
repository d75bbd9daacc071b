/**
 * `torch.load` without PyTorch and without running anything: the zip format (PyTorch ≥ 1.6) and the legacy
 * format (magic number, protocol version and system-info pickles, the object pickle, the storage keys, then
 * each storage as an int64 element count and its raw bytes). The object is a state_dict (name → tensor),
 * a dict holding one under `state_dict` / `model` / `state_dict_ema` / `model_ema` (the keys timm's
 * `load_state_dict` looks under, the plain weights first), or a whole saved module whose tensors are read
 * from its placeholders' `_parameters` and `_buffers` (./torch-globals.ts). Takes bytes, so it runs wherever
 * a Uint8Array does.
 */
import { WeightsFileError } from '../../util/errors.js';
import { PySet, PyTuple, unpickle } from './pickle.js';
import { AllocationBudget, decodeTensor } from './tensor.js';
import { ELEMENT_BYTES, ModulePlaceholder, Storage, StorageType, TensorRef, torchHooks, type DtypeName } from './torch-globals.js';
import { checkCrc, looksLikeZip, readZip } from './zip.js';

/** One tensor of the checkpoint, decoded to float32 (`dtype` is what the file stored). */
export interface TorchTensor {
  dtype: DtypeName;
  shape: number[];
  data: Float32Array;
}

export interface TorchLoadOptions {
  /**
   * The most bytes the decoded tensors may take (default: 4 × the file's size plus 1 MiB, room for every
   * float16 or uint8 value as float32). Overlapping views that would need more are refused.
   */
  maxDecodedBytes?: number;
}

/** 0x1950a86a20f9469cfc6c: the number the legacy format starts with. */
const LEGACY_MAGIC = 0x1950a86a20f9469cfc6cn;
const LEGACY_PROTOCOL = 1001;
const NESTED_KEYS = ['state_dict', 'model', 'state_dict_ema', 'model_ema'];
const MAX_MODULE_DEPTH = 200;

export type TorchFormat = 'zip' | 'legacy';

/** Which torch.save format the bytes look like, from their first bytes (null: neither). */
export function sniffTorchFormat(bytes: Uint8Array): TorchFormat | null {
  if (looksLikeZip(bytes)) return 'zip';
  // The legacy format starts with the pickled magic number: PROTO 2, LONG1 of 10 bytes.
  if (bytes.length >= 3 && bytes[0] === 0x80 && bytes[1]! >= 2 && bytes[1]! <= 5 && bytes[2] === 0x8a) return 'legacy';
  return null;
}

function pidItems(file: string, pid: unknown): unknown[] {
  if (!(pid instanceof PyTuple) || pid.items[0] !== 'storage' || !(pid.items[1] instanceof StorageType) || typeof pid.items[2] !== 'string') {
    throw new WeightsFileError(file, 'a persistent id that is not a storage reference');
  }
  return pid.items;
}

function count(file: string, value: unknown, what: string): number {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 0) throw new WeightsFileError(file, `${what} is ${String(value)}, not an element count`);
  return value;
}

function loadZip(bytes: Uint8Array, file: string): unknown {
  const entries = readZip(bytes, file);
  const pickles = [...entries.keys()].filter((name) => /^[^/]+\/data\.pkl$/.test(name));
  if (pickles.length !== 1) {
    const script = [...entries.keys()].some((name) => /^[^/]+\/(constants\.pkl|code\/)/.test(name));
    throw new WeightsFileError(file, script
      ? 'a TorchScript archive (torch.jit.save), whose tensors need its code: save model.state_dict() with torch.save instead'
      : `a zip archive with ${pickles.length === 0 ? 'no' : 'more than one'} <name>/data.pkl: not a torch.save file`);
  }
  const prefix = pickles[0]!.slice(0, -'data.pkl'.length);
  const order = entries.get(`${prefix}byteorder`);
  if (order && new TextDecoder().decode(order.data).trim() !== 'little') {
    throw new WeightsFileError(file, `saved on a big-endian machine (byteorder '${new TextDecoder().decode(order.data).trim()}'); only little-endian files are read`);
  }
  const storages = new Map<string, Storage>();
  const persistentLoad = (pid: unknown): Storage => {
    const [, type, key, , numelValue] = pidItems(file, pid);
    const { dtype } = type as StorageType;
    const numel = count(file, numelValue, `storage '${key}'s size`);
    const known = storages.get(key as string);
    if (known) {
      if (known.dtype !== dtype || known.numel !== numel) throw new WeightsFileError(file, `storage '${key}' is referred to as two different storages`);
      return known;
    }
    const entry = entries.get(`${prefix}data/${key}`);
    if (!entry) throw new WeightsFileError(file, `storage '${key}' has no entry ${prefix}data/${key} in the archive`);
    if (entry.data.length !== numel * ELEMENT_BYTES[dtype]) {
      throw new WeightsFileError(file, `storage '${key}' declares ${numel} ${dtype} elements (${numel * ELEMENT_BYTES[dtype]} bytes) but its entry holds ${entry.data.length} bytes`);
    }
    checkCrc(entry, file);
    const storage = new Storage(key as string, dtype, numel);
    storage.bytes = entry.data;
    storages.set(key as string, storage);
    return storage;
  };
  const pickle = entries.get(pickles[0]!)!;
  checkCrc(pickle, file);
  const { value, end } = unpickle(pickle.data, 0, file, torchHooks(file, persistentLoad));
  if (end !== pickle.data.length) throw new WeightsFileError(file, `${pickles[0]} has ${pickle.data.length - end} bytes after its end`);
  return value;
}

function loadLegacy(bytes: Uint8Array, file: string): unknown {
  const noStorages = torchHooks(file, () => {
    throw new WeightsFileError(file, 'a storage in the header of a legacy file');
  });
  const magic = unpickle(bytes, 0, file, noStorages);
  if (magic.value !== LEGACY_MAGIC) {
    throw new WeightsFileError(file, 'a pickle that does not start with torch.save\'s magic number: not a PyTorch checkpoint');
  }
  const protocol = unpickle(bytes, magic.end, file, noStorages);
  if (protocol.value !== LEGACY_PROTOCOL) throw new WeightsFileError(file, `legacy protocol version ${String(protocol.value)}; only ${LEGACY_PROTOCOL} is read`);
  const info = unpickle(bytes, protocol.end, file, noStorages);
  if (!(info.value instanceof Map) || info.value.get('little_endian') !== true) {
    throw new WeightsFileError(file, 'saved on a big-endian machine (or without system info); only little-endian files are read');
  }

  const storages = new Map<string, Storage>();
  const persistentLoad = (pid: unknown): unknown => {
    // Whole-module saves name each module class through ('module', class, source file, source).
    if (pid instanceof PyTuple && pid.items[0] === 'module' && pid.items.length === 4) return pid.items[1];
    const [, type, key, , sizeValue, view] = pidItems(file, pid);
    const { dtype } = type as StorageType;
    const numel = count(file, sizeValue, `storage '${key}'s size`);
    let root = storages.get(key as string);
    if (!root) {
      root = new Storage(key as string, dtype, numel);
      storages.set(key as string, root);
    } else if (root.dtype !== dtype || root.numel !== numel) {
      throw new WeightsFileError(file, `storage '${key}' is referred to as two different storages`);
    }
    if (view === null || view === undefined) return root;
    // (view key, element offset, element count): an old-style view of the root storage.
    if (!(view instanceof PyTuple) || view.items.length !== 3) throw new WeightsFileError(file, `storage '${key}' has a malformed view`);
    const offset = count(file, view.items[1], 'a storage view\'s offset');
    const size = count(file, view.items[2], 'a storage view\'s size');
    if (offset + size > numel) throw new WeightsFileError(file, `a view [${offset}, ${offset + size}) of storage '${key}' reaches past its ${numel} elements`);
    return new Storage(`${String(view.items[0])} (view of ${key})`, dtype, size, { storage: root, offset });
  };
  const main = unpickle(bytes, info.end, file, torchHooks(file, persistentLoad));
  const keys = unpickle(bytes, main.end, file, noStorages);
  if (!Array.isArray(keys.value) || !keys.value.every((k) => typeof k === 'string')) throw new WeightsFileError(file, 'the storage key list is not a list of strings');

  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let at = keys.end;
  for (const key of keys.value as string[]) {
    const storage = storages.get(key);
    // An unreferenced storage's element size is unknown, so the rest of the file could not be read.
    if (!storage) throw new WeightsFileError(file, `the data section holds storage '${key}', which no tensor refers to`);
    if (storage.bytes) throw new WeightsFileError(file, `storage '${key}' appears twice in the data section`);
    if (at + 8 > bytes.length) throw new WeightsFileError(file, `the data section ends before storage '${key}': truncated`);
    const numel = view.getBigInt64(at, true);
    if (numel !== BigInt(storage.numel)) throw new WeightsFileError(file, `storage '${key}' is declared with ${storage.numel} elements but its data record says ${numel}`);
    const length = storage.numel * ELEMENT_BYTES[storage.dtype];
    if (at + 8 + length > bytes.length) throw new WeightsFileError(file, `storage '${key}' (${length} bytes at byte ${at + 8}) runs past the end of the file: truncated`);
    storage.bytes = bytes.subarray(at + 8, at + 8 + length);
    at += 8 + length;
  }
  for (const storage of storages.values()) {
    if (!storage.bytes) throw new WeightsFileError(file, `storage '${storage.key}' has no data in the file`);
  }
  if (at !== bytes.length) throw new WeightsFileError(file, `${bytes.length - at} bytes after the last storage`);
  return main.value;
}

function kindOf(value: unknown): string {
  if (value instanceof TensorRef) return 'a tensor';
  if (value instanceof Map) return 'a dict';
  if (value instanceof ModulePlaceholder) return `a ${value.cls.qualified}`;
  if (value instanceof PyTuple || Array.isArray(value)) return 'a sequence';
  return value === null ? 'None' : typeof value;
}

/** `module.state_dict()` from placeholders: parameters, persistent buffers, then children, as PyTorch orders them. */
function walkModule(file: string, module: ModulePlaceholder, prefix: string, out: Map<string, TensorRef>, seen: Set<ModulePlaceholder>, depth: number): void {
  if (seen.has(module) || depth > MAX_MODULE_DEPTH) throw new WeightsFileError(file, `module '${prefix}' contains itself or is nested too deeply`);
  seen.add(module);
  const state = module.state;
  if (!state) throw new WeightsFileError(file, `module '${prefix || module.cls.qualified}' was saved without its state`);
  const dict = (key: string): Map<unknown, unknown> => {
    const value = state.get(key);
    if (value === undefined) return new Map();
    if (!(value instanceof Map)) throw new WeightsFileError(file, `module '${prefix}' has ${key} that is not a dict`);
    return value;
  };
  const skip = state.get('_non_persistent_buffers_set');
  const nonPersistent = new Set(skip instanceof PySet ? skip.items : []);
  for (const [group, values] of [['_parameters', dict('_parameters')], ['_buffers', dict('_buffers')]] as const) {
    for (const [name, value] of values) {
      if (value === null || (group === '_buffers' && nonPersistent.has(name))) continue;
      if (!(value instanceof TensorRef)) throw new WeightsFileError(file, `module '${prefix}' has ${group} entry '${String(name)}' that is ${kindOf(value)}, not a tensor`);
      out.set(`${prefix}${String(name)}`, value);
    }
  }
  for (const [name, child] of dict('_modules')) {
    if (child === null) continue;
    if (!(child instanceof ModulePlaceholder)) throw new WeightsFileError(file, `module '${prefix}' has a child '${String(name)}' that is ${kindOf(child)}`);
    walkModule(file, child, `${prefix}${String(name)}.`, out, seen, depth + 1);
  }
}

/** The name → tensor map the checkpoint holds (see the file comment for where it is looked for). */
function stateDictOf(file: string, root: unknown, nested = false): Map<string, TensorRef> {
  if (root instanceof ModulePlaceholder) {
    const out = new Map<string, TensorRef>();
    walkModule(file, root, '', out, new Set(), 0);
    return out;
  }
  if (!(root instanceof Map)) throw new WeightsFileError(file, `holds ${kindOf(root)}, not a state_dict, a dict with one, or a module`);
  const values = [...root.values()];
  if (root.size > 0 && values.every((v) => v instanceof TensorRef)) {
    const out = new Map<string, TensorRef>();
    for (const [key, value] of root) {
      if (typeof key !== 'string') throw new WeightsFileError(file, `a state_dict key is ${kindOf(key)}, not a string`);
      out.set(key, value as TensorRef);
    }
    return out;
  }
  const key = nested ? undefined : NESTED_KEYS.find((k) => root.get(k) instanceof Map || root.get(k) instanceof ModulePlaceholder);
  if (key !== undefined) return stateDictOf(file, root.get(key), true);
  const found = [...root.entries()].slice(0, 8).map(([k, v]) => `${String(k)}: ${kindOf(v)}`).join(', ');
  throw new WeightsFileError(file, `holds a dict that is not a state_dict (${found || 'empty'}) and has none under ${NESTED_KEYS.join(', ')}`);
}

/**
 * Reads a `torch.save` checkpoint from its bytes: name → float32 tensor in PyTorch layout. `file` labels the
 * errors (WeightsFileError, or UnsafePickleError for a global outside the allowed few).
 */
export function parseTorchCheckpoint(bytes: Uint8Array, file: string, options: TorchLoadOptions = {}): Map<string, TorchTensor> {
  const format = sniffTorchFormat(bytes);
  if (format === null) {
    const tar = bytes.length > 262 && new TextDecoder().decode(bytes.subarray(257, 262)) === 'ustar';
    throw new WeightsFileError(file, tar
      ? 'the tar format of torch.save before PyTorch 0.4; load and re-save it with a newer PyTorch'
      : 'neither a zip archive (PyTorch ≥ 1.6) nor a legacy torch.save pickle');
  }
  const root = format === 'zip' ? loadZip(bytes, file) : loadLegacy(bytes, file);
  const refs = stateDictOf(file, root);
  const budget = new AllocationBudget(options.maxDecodedBytes ?? 4 * bytes.length + (1 << 20), file);
  const decoded = new Map<TensorRef, Float32Array>();
  const out = new Map<string, TorchTensor>();
  for (const [name, ref] of refs) {
    // Names that share one tensor (tied weights) share its decoded values too.
    let data = decoded.get(ref);
    if (!data) {
      data = decodeTensor(ref, budget, name);
      decoded.set(ref, data);
    }
    out.set(name, { dtype: ref.storage.dtype, shape: [...ref.shape], data });
  }
  return out;
}
