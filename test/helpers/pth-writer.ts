/**
 * Hand-made torch files for the cases PyTorch will not write (oversized storages, views past their storage,
 * forbidden globals, zip64, data descriptors): a pickle opcode builder and a stored-zip writer. PyTorch's
 * own files (test/fixtures/pth/) are the reference for everything it does write.
 */
import { crc32 } from '../../src/weights/pth/zip.js';

const utf8 = new TextEncoder();

function u32(n: number): number[] {
  return [n & 0xff, (n >>> 8) & 0xff, (n >>> 16) & 0xff, (n >>> 24) & 0xff];
}

/** Opcodes appended in order; `bytes()` ends with STOP. */
export class Pickle {
  private readonly out: number[];
  constructor(protocol = 2) {
    this.out = [0x80, protocol];
  }
  raw(...values: number[]): this {
    this.out.push(...values);
    return this;
  }
  global(module: string, name: string): this {
    return this.raw(0x63, ...utf8.encode(`${module}\n${name}\n`));
  }
  stackGlobal(module: string, name: string): this {
    return this.str(module).str(name).raw(0x93);
  }
  str(value: string): this {
    const data = utf8.encode(value);
    return this.raw(0x58, ...u32(data.length), ...data);
  }
  int(value: number): this {
    return this.raw(0x4a, ...u32(value));
  }
  /** LONG1 of a non-negative bigint (8 bytes, plus a zero byte to keep it positive). */
  long(value: bigint): this {
    const data: number[] = [];
    for (let v = value; v > 0n; v >>= 8n) data.push(Number(v & 0xffn));
    if (data.length === 0 || data[data.length - 1]! & 0x80) data.push(0);
    return this.raw(0x8a, data.length, ...data);
  }
  mark(): this { return this.raw(0x28); }
  tuple(): this { return this.raw(0x74); }
  emptyTuple(): this { return this.raw(0x29); }
  emptyDict(): this { return this.raw(0x7d); }
  setItems(): this { return this.raw(0x75); }
  setItem(): this { return this.raw(0x73); }
  reduce(): this { return this.raw(0x52); }
  newObj(): this { return this.raw(0x81); }
  build(): this { return this.raw(0x62); }
  persid(): this { return this.raw(0x51); }
  none(): this { return this.raw(0x4e); }
  bool(value: boolean): this { return this.raw(value ? 0x88 : 0x89); }
  list(items: string[]): this {
    this.raw(0x5d, 0x28);
    for (const item of items) this.str(item);
    return this.raw(0x65);
  }
  /** Pushes _rebuild_tensor_v2(storage, offset, size, stride, False, OrderedDict()) for a float storage. */
  tensor(key: string, storageNumel: number, offset: number, size: number[], stride: number[], legacy = false): this {
    this.global('torch._utils', '_rebuild_tensor_v2').mark();
    this.mark().str('storage').global('torch', 'FloatStorage').str(key).str('cpu');
    if (storageNumel > 0x7fffffff) this.long(BigInt(storageNumel));
    else this.int(storageNumel);
    if (legacy) this.none();
    this.tuple().persid().int(offset);
    this.mark();
    for (const d of size) this.int(d);
    this.tuple().mark();
    for (const s of stride) this.int(s);
    this.tuple().bool(false).global('collections', 'OrderedDict').emptyTuple().reduce();
    return this.tuple().reduce();
  }
  bytes(): Uint8Array {
    return Uint8Array.from([...this.out, 0x2e]);
  }
}

/** {name: tensor} as a pickled dict, given each tensor's pushing function. */
export function stateDictPickle(entries: [string, (p: Pickle) => Pickle][], protocol = 2): Uint8Array {
  const p = new Pickle(protocol).emptyDict().mark();
  for (const [name, push] of entries) push(p.str(name));
  return p.setItems().bytes();
}

export interface ZipOptions {
  /** Write zip64 end records (and 0xFFFF / 0xFFFFFFFF in the plain end record). */
  zip64?: boolean;
  /** Set the data-descriptor flag, zero the local header's sizes and CRC, and write descriptors. */
  descriptors?: boolean;
  /** Compression method to declare (the data stays stored). */
  method?: number;
}

/** A zip archive of stored entries. */
export function zipStored(entries: [string, Uint8Array][], options: ZipOptions = {}): Uint8Array {
  const out: number[] = [];
  const central: number[] = [];
  const flags = options.descriptors ? 8 : 0;
  const method = options.method ?? 0;
  for (const [name, data] of entries) {
    const nameBytes = [...utf8.encode(name)];
    const crc = crc32(data);
    const offset = out.length;
    const localSizes = options.descriptors ? [...u32(0), ...u32(0), ...u32(0)] : [...u32(crc), ...u32(data.length), ...u32(data.length)];
    out.push(...u32(0x04034b50), 20, 0, flags, 0, method, 0, 0, 0, 0, 0, ...localSizes, nameBytes.length, 0, 0, 0, ...nameBytes);
    for (const b of data) out.push(b);
    if (options.descriptors) out.push(...u32(0x08074b50), ...u32(crc), ...u32(data.length), ...u32(data.length));
    central.push(...u32(0x02014b50), 20, 0, 20, 0, flags, 0, method, 0, 0, 0, 0, 0, ...u32(crc), ...u32(data.length), ...u32(data.length),
      nameBytes.length, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, ...u32(offset), ...nameBytes);
  }
  const cdOffset = out.length;
  out.push(...central);
  const count = entries.length;
  if (options.zip64) {
    const record = out.length;
    const u64 = (n: number) => [...u32(n), ...u32(0)];
    out.push(...u32(0x06064b50), ...u64(44), 45, 0, 45, 0, ...u32(0), ...u32(0), ...u64(count), ...u64(count), ...u64(central.length), ...u64(cdOffset));
    out.push(...u32(0x07064b50), ...u32(0), ...u64(record), ...u32(1));
    out.push(...u32(0x06054b50), 0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, ...u32(0xffffffff), ...u32(0xffffffff), 0, 0);
  } else {
    out.push(...u32(0x06054b50), 0, 0, 0, 0, count & 0xff, count >> 8, count & 0xff, count >> 8, ...u32(central.length), ...u32(cdOffset), 0, 0);
  }
  return Uint8Array.from(out);
}

/** A torch.save-style archive: archive/data.pkl and archive/data/<key> for each storage. */
export function torchZip(pickle: Uint8Array, storages: Record<string, Uint8Array>, options: ZipOptions = {}): Uint8Array {
  return zipStored([['archive/data.pkl', pickle], ...Object.entries(storages).map(([key, data]) => [`archive/data/${key}`, data] as [string, Uint8Array]), ['archive/version', utf8.encode('3\n')]], options);
}

/** A legacy-format file: magic, protocol 1001, system info, the object pickle, the key list, the storages. */
export function torchLegacy(main: Uint8Array, storages: [string, bigint, Uint8Array][]): Uint8Array {
  const magic = new Pickle().long(0x1950a86a20f9469cfc6cn).bytes();
  const protocol = new Pickle().int(1001).bytes();
  const info = new Pickle().emptyDict().str('little_endian').bool(true).setItem().bytes();
  const keys = new Pickle().list(storages.map(([key]) => key)).bytes();
  const parts: number[] = [...magic, ...protocol, ...info, ...main, ...keys];
  for (const [, numel, data] of storages) {
    const n = new Uint8Array(new BigInt64Array([numel]).buffer);
    parts.push(...n, ...data);
  }
  return Uint8Array.from(parts);
}
