/**
 * A reader for the zip archives `torch.save` writes (PyTorch ≥ 1.6): entries are stored, not compressed,
 * and each one's bytes are handed back as a view of the file — nothing is copied and nothing is allocated
 * from a size the file declares. Sizes and offsets come from the central directory (PyTorch's writer may put
 * zeros and a data descriptor in the local headers); every one is checked against the file's length.
 * Zip64 records (archives or entries over 4 GiB) are read the same way.
 */
import { WeightsFileError } from '../../util/errors.js';

export interface ZipEntry {
  name: string;
  /** The stored bytes, a view into the archive. */
  data: Uint8Array;
  /** The CRC-32 the central directory declares. */
  crc32: number;
}

const EOCD = 0x06054b50;
const ZIP64_LOCATOR = 0x07064b50;
const ZIP64_EOCD = 0x06064b50;
const CENTRAL = 0x02014b50;
const LOCAL = 0x04034b50;
const CENTRAL_SIZE = 46;
const LOCAL_SIZE = 30;

/** True for bytes that begin like a zip archive (a local header, or the end record of an empty one). */
export function looksLikeZip(bytes: Uint8Array): boolean {
  return bytes.length >= 4 && bytes[0] === 0x50 && bytes[1] === 0x4b && (bytes[2] === 3 || bytes[2] === 5) && (bytes[3] === 4 || bytes[3] === 6);
}

class Reader {
  readonly view: DataView;
  constructor(
    readonly bytes: Uint8Array,
    readonly file: string,
  ) {
    this.view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  }
  fail(defect: string): never {
    throw new WeightsFileError(this.file, `zip archive: ${defect}`);
  }
  /** Demands [offset, offset + length) inside the file before anything there is read. */
  need(offset: number, length: number, what: string): void {
    if (!(offset >= 0 && length >= 0 && offset + length <= this.bytes.length)) {
      this.fail(`${what} at byte ${offset} (${length} bytes) runs past the end of the file (${this.bytes.length} bytes): truncated or corrupt`);
    }
  }
  u16(offset: number): number {
    return this.view.getUint16(offset, true);
  }
  u32(offset: number): number {
    return this.view.getUint32(offset, true);
  }
  u64(offset: number, what: string): number {
    const value = this.view.getBigUint64(offset, true);
    if (value > BigInt(Number.MAX_SAFE_INTEGER)) this.fail(`${what} is ${value}, beyond any file`);
    return Number(value);
  }
}

interface Directory {
  count: number;
  offset: number;
  size: number;
  /** Where the directory must end: the zip64 end record or the end record. */
  limit: number;
}

function findDirectory(r: Reader): Directory {
  const { bytes } = r;
  let eocd = -1;
  // The end record is 22 bytes plus a comment of at most 65535; it is searched for from the back.
  for (let at = bytes.length - 22; at >= Math.max(0, bytes.length - 22 - 0xffff); at--) {
    if (r.u32(at) === EOCD) {
      eocd = at;
      break;
    }
  }
  if (eocd < 0) r.fail('no end-of-central-directory record (not a zip, or truncated)');
  if (r.u16(eocd + 4) !== 0 || r.u16(eocd + 6) !== 0) r.fail('multi-disk archives are not supported');
  let count = r.u16(eocd + 10);
  let size = r.u32(eocd + 12);
  let offset = r.u32(eocd + 16);
  let limit = eocd;
  if (count === 0xffff || size === 0xffffffff || offset === 0xffffffff) {
    const locator = eocd - 20;
    if (locator < 0 || r.u32(locator) !== ZIP64_LOCATOR) r.fail('the end record asks for zip64 but there is no zip64 locator');
    const record = r.u64(locator + 8, 'the zip64 end record offset');
    r.need(record, 56, 'the zip64 end record');
    if (r.u32(record) !== ZIP64_EOCD) r.fail(`no zip64 end record at byte ${record}`);
    count = r.u64(record + 32, 'the zip64 entry count');
    size = r.u64(record + 40, 'the zip64 central directory size');
    offset = r.u64(record + 48, 'the zip64 central directory offset');
    limit = record;
  }
  if (offset + size > limit) r.fail(`the central directory [${offset}, ${offset + size}) runs past its end record at byte ${limit}`);
  // Each directory entry takes at least 46 bytes, so a count the directory cannot hold is refused before the loop.
  if (count * CENTRAL_SIZE > size) r.fail(`the central directory declares ${count} entries but holds ${size} bytes`);
  return { count, offset, size, limit };
}

/** Reads a zip64 extended-information field for the sizes and offset that are 0xFFFFFFFF in the entry. */
function zip64Extra(r: Reader, start: number, end: number, wanted: { size: boolean; compressed: boolean; offset: boolean }, name: string) {
  for (let at = start; at + 4 <= end; ) {
    const id = r.u16(at);
    const length = r.u16(at + 2);
    if (at + 4 + length > end) break;
    if (id === 0x0001) {
      let p = at + 4;
      const take = (what: string): number => {
        if (p + 8 > at + 4 + length) r.fail(`entry '${name}': the zip64 field lacks ${what}`);
        const value = r.u64(p, `entry '${name}' ${what}`);
        p += 8;
        return value;
      };
      return {
        size: wanted.size ? take('the size') : undefined,
        compressed: wanted.compressed ? take('the compressed size') : undefined,
        offset: wanted.offset ? take('the header offset') : undefined,
      };
    }
    at += 4 + length;
  }
  return r.fail(`entry '${name}' needs a zip64 field that it does not have`);
}

/**
 * The archive's entries by name. Throws a WeightsFileError naming the file for anything PyTorch's writer
 * would not produce: compressed or encrypted entries, sizes or offsets outside the file, duplicate names.
 */
export function readZip(bytes: Uint8Array, file: string): Map<string, ZipEntry> {
  const r = new Reader(bytes, file);
  if (bytes.length < 22) r.fail(`the file is ${bytes.length} bytes, shorter than an empty archive`);
  const dir = findDirectory(r);
  const decoder = new TextDecoder('utf-8');
  const entries = new Map<string, ZipEntry>();
  let at = dir.offset;
  const end = dir.offset + dir.size;
  for (let i = 0; i < dir.count; i++) {
    if (at + CENTRAL_SIZE > end || r.u32(at) !== CENTRAL) r.fail(`central directory entry ${i} at byte ${at} is damaged`);
    const flags = r.u16(at + 8);
    const method = r.u16(at + 10);
    const crc32 = r.u32(at + 16);
    let compressed = r.u32(at + 20);
    let size = r.u32(at + 24);
    const nameLength = r.u16(at + 28);
    const extraLength = r.u16(at + 30);
    const commentLength = r.u16(at + 32);
    let local = r.u32(at + 42);
    const next = at + CENTRAL_SIZE + nameLength + extraLength + commentLength;
    if (next > end) r.fail(`central directory entry ${i} runs past the directory`);
    const name = decoder.decode(bytes.subarray(at + CENTRAL_SIZE, at + CENTRAL_SIZE + nameLength));
    if (flags & 1) r.fail(`entry '${name}' is encrypted`);
    if (size === 0xffffffff || compressed === 0xffffffff || local === 0xffffffff) {
      const extra = zip64Extra(r, at + CENTRAL_SIZE + nameLength, at + CENTRAL_SIZE + nameLength + extraLength,
        { size: size === 0xffffffff, compressed: compressed === 0xffffffff, offset: local === 0xffffffff }, name);
      size = extra.size ?? size;
      compressed = extra.compressed ?? compressed;
      local = extra.offset ?? local;
    }
    if (method !== 0) r.fail(`entry '${name}' is compressed (method ${method}); torch.save stores entries uncompressed`);
    if (compressed !== size) r.fail(`entry '${name}' is stored but declares ${compressed} stored and ${size} real bytes`);
    r.need(local, LOCAL_SIZE, `the local header of '${name}'`);
    if (r.u32(local) !== LOCAL) r.fail(`no local header for '${name}' at byte ${local}`);
    const localName = local + LOCAL_SIZE;
    const start = localName + r.u16(local + 26) + r.u16(local + 28);
    if (r.u16(local + 26) !== nameLength || decoder.decode(bytes.subarray(localName, localName + nameLength)) !== name) {
      r.fail(`the local header at byte ${local} does not name '${name}'`);
    }
    // Entry data lies before the central directory; one that reaches into it was damaged.
    if (start + size > dir.offset) r.fail(`entry '${name}' (${size} bytes at byte ${start}) runs past the start of the central directory (byte ${dir.offset})`);
    if (entries.has(name)) r.fail(`the name '${name}' appears twice`);
    entries.set(name, { name, data: bytes.subarray(start, start + size), crc32 });
    at = next;
  }
  return entries;
}

let table: Uint32Array | undefined;

/** CRC-32 (IEEE 802.3, as zip uses) of the bytes. */
export function crc32(data: Uint8Array): number {
  if (!table) {
    table = new Uint32Array(256);
    for (let n = 0; n < 256; n++) {
      let c = n;
      for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
      table[n] = c >>> 0;
    }
  }
  let c = 0xffffffff;
  for (let i = 0; i < data.length; i++) c = table[(c ^ data[i]!) & 0xff]! ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

/** Demands that an entry's bytes match its declared CRC-32 (a flipped byte in the data is caught here). */
export function checkCrc(entry: ZipEntry, file: string): void {
  const actual = crc32(entry.data);
  if (actual !== entry.crc32) {
    throw new WeightsFileError(file, `zip archive: entry '${entry.name}' fails its CRC-32 check (declared ${entry.crc32.toString(16)}, computed ${actual.toString(16)}): corrupt`);
  }
}
