/**
 * The only globals a torch checkpoint may name, and the inert values they become. Nothing here is ever
 * called: a "call" in the pickle (REDUCE, NEWOBJ) of an allowed global builds a plain record (a TensorRef, a
 * Map, a module placeholder) from its arguments. Any other global — `posix.system`, `builtins.eval`,
 * `torch.load`, a class of the saver's own — is refused with an UnsafePickleError naming it.
 *
 * Whole saved modules (`torch.save(model)`): a module is pickled as its class (GLOBAL) + NEWOBJ + BUILD with
 * its `__dict__`. Classes under torch.nn.modules, torchvision.models and timm.models / timm.layers become
 * ModulePlaceholders holding that dict, so their `_parameters`, `_buffers` and `_modules` can be walked as
 * `state_dict()` would; a class from anywhere else (your own `__main__.Net`) is refused, since nothing of
 * it can be known without running its code.
 */
import { UnsafePickleError, WeightsFileError } from '../../util/errors.js';
import { PySet, PyTuple, type UnpickleHooks } from './pickle.js';

export type DtypeName = 'float32' | 'float16' | 'bfloat16' | 'float64' | 'int64' | 'int32' | 'int16' | 'int8' | 'uint8' | 'bool';

export const ELEMENT_BYTES: Record<DtypeName, number> = {
  float32: 4, float16: 2, bfloat16: 2, float64: 8, int64: 8, int32: 4, int16: 2, int8: 1, uint8: 1, bool: 1,
};

/** `torch.FloatStorage` and friends, as named in a persistent id. */
export class StorageType {
  constructor(readonly dtype: DtypeName) {}
}

/** `torch.float16` and friends (newer files may name dtypes as globals). */
export class Dtype {
  constructor(readonly dtype: DtypeName) {}
}

/** A storage the pickle refers to; its bytes are attached by the container reader (zip entry or legacy record). */
export class Storage {
  bytes: Uint8Array | null = null;
  constructor(
    readonly key: string,
    readonly dtype: DtypeName,
    /** Elements, as declared by the persistent id (checked against the bytes when they are attached). */
    readonly numel: number,
    /** Legacy views of another storage: that storage and the element offset into it. */
    readonly base: { storage: Storage; offset: number } | null = null,
  ) {}
}

/** A tensor as `_rebuild_tensor_v2` describes it: a strided view of a storage (checked to lie inside it). */
export class TensorRef {
  constructor(
    readonly storage: Storage,
    readonly offset: number,
    readonly shape: number[],
    readonly stride: number[],
  ) {}
}

/** An allowed module class (never instantiated). */
export class ModuleClass {
  constructor(readonly qualified: string) {}
}

/** What `torch.save(model)` pickled for one module: its class name and its `__dict__` (BUILD state). */
export class ModulePlaceholder {
  state: Map<unknown, unknown> | null = null;
  constructor(readonly cls: ModuleClass) {}
}

/** A value kept only so the pickle parses (numpy scalars in a training checkpoint, `_codecs.encode`, markers). */
export class Opaque {
  constructor(readonly qualified: string) {}
}

type Rebuild = 'tensor_v2' | 'tensor' | 'parameter' | 'parameter_with_state' | 'from_type_v2' | 'ordered_dict' | 'size' | 'set' | 'codecs_encode';

class Callable {
  constructor(
    readonly kind: Rebuild,
    readonly qualified: string,
  ) {}
}

const STORAGES: Record<string, DtypeName> = {
  FloatStorage: 'float32', HalfStorage: 'float16', BFloat16Storage: 'bfloat16', DoubleStorage: 'float64',
  LongStorage: 'int64', IntStorage: 'int32', ShortStorage: 'int16', CharStorage: 'int8', ByteStorage: 'uint8', BoolStorage: 'bool',
};
const DTYPES: Record<string, DtypeName> = {
  float32: 'float32', float: 'float32', float16: 'float16', half: 'float16', bfloat16: 'bfloat16', float64: 'float64', double: 'float64',
  int64: 'int64', long: 'int64', int32: 'int32', int: 'int32', int16: 'int16', short: 'int16', int8: 'int8', uint8: 'uint8', bool: 'bool',
};
const CALLABLES: Record<string, Rebuild> = {
  'torch._utils._rebuild_tensor_v2': 'tensor_v2',
  'torch._utils._rebuild_tensor': 'tensor',
  'torch._utils._rebuild_parameter': 'parameter',
  'torch._utils._rebuild_parameter_with_state': 'parameter_with_state',
  'torch._tensor._rebuild_from_type_v2': 'from_type_v2',
  'collections.OrderedDict': 'ordered_dict',
  'torch.Size': 'size',
  'builtins.set': 'set', '__builtin__.set': 'set', 'builtins.frozenset': 'set', '__builtin__.frozenset': 'set',
  '_codecs.encode': 'codecs_encode',
};
/** Inert markers: tensor classes named by `_rebuild_from_type_v2`, numpy values in training checkpoints. */
const OPAQUE = new Set(['torch.Tensor', 'torch._tensor.Tensor', 'torch.nn.parameter.Parameter',
  'numpy.core.multiarray.scalar', 'numpy.core.multiarray._reconstruct', 'numpy.dtype', 'numpy.ndarray',
  'numpy._core.multiarray.scalar', 'numpy._core.multiarray._reconstruct']);
/** Module classes that become placeholders (see the file comment). */
const MODULE_PREFIXES = ['torch.nn.modules.', 'torchvision.models.', 'timm.models.', 'timm.layers.'];

const ALLOWED_TEXT =
  'collections.OrderedDict, torch._utils._rebuild_tensor_v2 / _rebuild_tensor / _rebuild_parameter, torch.*Storage, ' +
  'torch.UntypedStorage, torch dtypes, and module classes under torch.nn.modules, torchvision.models, timm.models, timm.layers';

/** Resolves a global to its inert stand-in, or refuses it. */
export function resolveGlobal(file: string, module: string, name: string): unknown {
  const qualified = `${module}.${name}`;
  if (module === 'torch' || module === 'torch.cuda') {
    const storage = STORAGES[name];
    if (storage) return new StorageType(storage);
    if (name === 'UntypedStorage') return new StorageType('uint8');
    if (module === 'torch' && DTYPES[name]) return new Dtype(DTYPES[name]!);
  }
  if (module === 'torch.storage' && (name === 'UntypedStorage' || name === 'TypedStorage' || name === '_UntypedStorage')) return new StorageType('uint8');
  const kind = CALLABLES[qualified];
  if (kind) return new Callable(kind, qualified);
  if (OPAQUE.has(qualified)) return new Opaque(qualified);
  if (MODULE_PREFIXES.some((prefix) => module.startsWith(prefix)) && /^[A-Za-z_][A-Za-z0-9_]*$/.test(name)) return new ModuleClass(qualified);
  const own = module === '__main__' || /^[A-Z]/.test(name) ? ' If this is a whole saved model of your own class, save model.state_dict() instead.' : '';
  throw new UnsafePickleError(file, qualified, `a weights file needs only ${ALLOWED_TEXT}; nothing in the file was run.${own}`);
}

function int(file: string, value: unknown, what: string): number {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 0) {
    throw new WeightsFileError(file, `${what} is ${typeof value === 'bigint' ? `${value} (too large)` : String(value)}; it must be a non-negative integer`);
  }
  return value;
}

function ints(file: string, value: unknown, what: string): number[] {
  if (!(value instanceof PyTuple) && !Array.isArray(value)) throw new WeightsFileError(file, `${what} is not a tuple of integers`);
  const items = value instanceof PyTuple ? value.items : (value as unknown[]);
  return items.map((v, i) => int(file, v, `${what}[${i}]`));
}

/**
 * Checks that every element a strided view can address lies inside its storage (the largest index is
 * offset + Σ (size − 1)·stride; an empty view addresses nothing).
 */
export function rebuildTensor(file: string, storage: unknown, offset: unknown, size: unknown, stride: unknown): TensorRef {
  if (!(storage instanceof Storage)) throw new WeightsFileError(file, 'a tensor is rebuilt from something that is not a storage');
  const o = int(file, offset, 'a tensor\'s storage offset');
  const shape = ints(file, size, 'a tensor\'s size');
  const strides = ints(file, stride, 'a tensor\'s stride');
  if (shape.length !== strides.length) throw new WeightsFileError(file, `a tensor has size [${shape}] but stride [${strides}]`);
  if (!shape.includes(0)) {
    let last = o;
    shape.forEach((d, i) => { last += (d - 1) * strides[i]!; });
    if (!Number.isSafeInteger(last) || last >= storage.numel) {
      throw new WeightsFileError(file, `a tensor of size [${shape}], stride [${strides}], offset ${o} reaches past its storage '${storage.key}' (${storage.numel} elements)`);
    }
  }
  return new TensorRef(storage, o, shape, strides);
}

function call(file: string, callable: unknown, args: unknown[]): unknown {
  if (callable instanceof ModuleClass) return new ModulePlaceholder(callable);
  if (callable instanceof Opaque) return new Opaque(`${callable.qualified}(...)`);
  if (!(callable instanceof Callable)) throw new WeightsFileError(file, 'the pickle calls something that is not a callable global');
  switch (callable.kind) {
    case 'tensor_v2':
    case 'tensor':
      if (args.length < 4) throw new WeightsFileError(file, `${callable.qualified} with ${args.length} arguments`);
      return rebuildTensor(file, args[0], args[1], args[2], args[3]);
    case 'parameter':
    case 'parameter_with_state':
      if (!(args[0] instanceof TensorRef)) throw new WeightsFileError(file, `${callable.qualified} of something that is not a tensor`);
      return args[0];
    case 'from_type_v2': {
      // (func, type, args, state): the tensor is func(*args); type and state are not needed for its values.
      const inner = args[2];
      if (!(inner instanceof PyTuple)) throw new WeightsFileError(file, `${callable.qualified} without an argument tuple`);
      // Only one level: a chain of these would recurse as deep as the file is long.
      if (args[0] instanceof Callable && args[0].kind === 'from_type_v2') throw new WeightsFileError(file, `${callable.qualified} of itself`);
      return call(file, args[0], inner.items);
    }
    case 'ordered_dict': {
      const dict = new Map<unknown, unknown>();
      const pairs = args[0];
      if (Array.isArray(pairs)) for (const pair of pairs) if (pair instanceof PyTuple && pair.items.length === 2) dict.set(pair.items[0], pair.items[1]);
      return dict;
    }
    case 'size':
      return args[0] instanceof PyTuple ? args[0] : new PyTuple([]);
    case 'set':
      return new PySet();
    case 'codecs_encode':
      return typeof args[0] === 'string' ? Uint8Array.from(args[0].slice(0, 0xffff), (c) => c.charCodeAt(0) & 0xff) : new Uint8Array(0);
  }
}

function build(file: string, target: unknown, state: unknown): void {
  if (target instanceof ModulePlaceholder) {
    if (!(state instanceof Map)) throw new WeightsFileError(file, `module ${target.cls.qualified} has a state that is not a dict`);
    target.state = state;
    return;
  }
  // OrderedDict's state is its attributes (a state_dict's `_metadata`), a tensor's or an opaque value's its
  // extras: none is needed for the weights.
  if (target instanceof Map || target instanceof TensorRef || target instanceof Opaque) return;
  throw new WeightsFileError(file, 'BUILD on a value that takes no state');
}

/** Unpickler hooks for a torch file; `persistentLoad` is the container's (zip or legacy). */
export function torchHooks(file: string, persistentLoad: (pid: unknown) => unknown): UnpickleHooks {
  return {
    global: (module, name) => resolveGlobal(file, module, name),
    call: (callable, args) => call(file, callable, args),
    build: (target, state) => build(file, target, state),
    persistentLoad,
  };
}
