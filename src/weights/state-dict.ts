/**
 * A torchvision-style state_dict from a file's bytes, whatever the file is: safetensors, or a PyTorch
 * checkpoint in the zip or the legacy format (./pth/). The format is told by content, not by the name. Also
 * the check of the SHA-256 prefix that torchvision's file names carry. Bytes in, no Node modules: the file
 * reading lives in ./torchvision.ts.
 */
import { WeightsFileError } from '../util/errors.js';
import { parseTorchCheckpoint, sniffTorchFormat } from './pth/torch-load.js';
import { parseSafetensors } from './safetensors.js';
import { isBatchesTracked, type TorchvisionTensor } from './torchvision-names.js';

export type StateDictFormat = 'safetensors' | 'pth-zip' | 'pth-legacy';

/**
 * The format of a weights file from its first bytes (16 are enough), or null when it is none of them.
 * `fileLength` is the whole file's length when `bytes` is only its beginning.
 */
export function sniffStateDictFormat(bytes: Uint8Array, fileLength = bytes.length): StateDictFormat | null {
  const torch = sniffTorchFormat(bytes);
  if (torch) return torch === 'zip' ? 'pth-zip' : 'pth-legacy';
  // safetensors: a little-endian u64 header length, then a JSON object.
  if (bytes.length >= 10 && bytes[8] === 0x7b) {
    const length = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength).getBigUint64(0, true);
    if (length >= 2n && length <= BigInt(fileLength - 8)) return 'safetensors';
  }
  return null;
}

/**
 * `safetensors.torch.save_file(model.state_dict())` stores num_batches_tracked as I64, which the
 * float-only reader rejects. Those entries are ignored anyway, so their header entries are relabelled as
 * F32 of the same byte length (keeping the buffer tiled as the reader demands) and dropped after parsing.
 */
function relabelBatchesTracked(bytes: Uint8Array): Uint8Array {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const headerLength = Number(view.getBigUint64(0, true));
  let header: unknown;
  try {
    header = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(bytes.subarray(8, 8 + headerLength)));
  } catch {
    return bytes;
  }
  if (typeof header !== 'object' || header === null || Array.isArray(header)) return bytes;
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
  if (!relabelled) return bytes;
  const text = new TextEncoder().encode(JSON.stringify(entries));
  const padded = text.length + ((8 - (text.length % 8)) % 8);
  const data = bytes.subarray(8 + headerLength);
  const out = new Uint8Array(8 + padded + data.length);
  new DataView(out.buffer).setBigUint64(0, BigInt(padded), true);
  out.set(text, 8);
  out.fill(0x20, 8 + text.length, 8 + padded);
  out.set(data, 8 + padded);
  return out;
}

export interface ParsedStateDict {
  format: StateDictFormat;
  /** name → tensor (PyTorch layout, float32), num_batches_tracked left out. */
  tensors: Map<string, TorchvisionTensor>;
}

/**
 * Parses a weights file held in memory. `fileName` labels errors. Throws a WeightsFileError (an
 * UnsafePickleError for a pickle naming a global outside the allowed few) for anything unreadable.
 */
export function parseStateDict(bytes: Uint8Array, fileName = '<buffer>'): ParsedStateDict {
  const format = sniffStateDictFormat(bytes);
  if (format === null) {
    throw new WeightsFileError(fileName, 'neither safetensors nor a PyTorch checkpoint (torch.save, zip or legacy format), judged by its first bytes');
  }
  const tensors = new Map<string, TorchvisionTensor>();
  const source = format === 'safetensors'
    ? parseSafetensors(relabelBatchesTracked(bytes), fileName).tensors
    : parseTorchCheckpoint(bytes, fileName);
  for (const [name, tensor] of source) if (!isBatchesTracked(name)) tensors.set(name, { shape: tensor.shape, data: tensor.data });
  return { format, tensors };
}

/**
 * The hex SHA-256 prefix a file name carries the way torchvision's do (`densenet121-a639ec97.pth`:
 * `-<8 or more hex digits>.<extension>` at the end), or null. All-digit suffixes (a date such as
 * `run-20240101.pth`) are not taken for a hash: every published prefix we know has a letter, and a date
 * would otherwise fail the check.
 */
export function hashPrefixOf(fileName: string): string | null {
  const base = fileName.split(/[\\/]/).pop() ?? fileName;
  const match = /-([0-9a-f]{8,64})\.[A-Za-z0-9]+$/.exec(base);
  return match && /[a-f]/.test(match[1]!) ? match[1]! : null;
}

/** Checks the bytes against the SHA-256 prefix in the file's name, when it has one (see hashPrefixOf). */
export async function checkHashPrefix(bytes: Uint8Array, fileName: string): Promise<void> {
  const prefix = hashPrefixOf(fileName);
  if (prefix === null) return;
  // Web Crypto (global in Node ≥ 20 and in browsers) keeps node:crypto out of this module.
  const digest = new Uint8Array(await globalThis.crypto.subtle.digest('SHA-256', bytes));
  const hex = Array.from(digest, (b) => b.toString(16).padStart(2, '0')).join('');
  if (!hex.startsWith(prefix)) {
    throw new WeightsFileError(
      fileName,
      `its name carries the SHA-256 prefix ${prefix} but the file's SHA-256 is ${hex}: a damaged or different download. ` +
        'Download it again, or skip the check with checkHash: false (train --no-check-hash)',
    );
  }
}
