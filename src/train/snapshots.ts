/**
 * Per-epoch snapshots of a training run in its output folder: everything a killed run needs to resume
 * bit-exactly (weights, optimizer state, the trainer's record). ("Checkpoint" in this project means
 * recomputation, src/checkpoint.) Each snapshot is a complete folder written before it becomes current:
 * only when every file of `snapshots/epoch-NNNN/` is on disk does the small pointer file `snapshot.json`
 * move to it (one atomic rename), and only then are older snapshot folders removed. A kill at any moment
 * leaves either the previous snapshot or the new one, never a mix.
 */
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { fileSystemHandler } from '../io/file-system.js';
import { writeFileAtomic } from '../util/atomic.js';
import { UsageError } from '../util/errors.js';
import type { NamedTensor } from '../step/optimizers.js';

export const SNAPSHOT_POINTER = 'snapshot.json';
export const SNAPSHOTS_DIR = 'snapshots';
/** The pointer file of version 0.1, when resume files were called checkpoints. */
const LEGACY_POINTER = 'checkpoint.json';
const FORMAT = 'efficient-densenet-snapshot';
// 2: optimizer state per parameter group; settings of the small-data recipe and fine-tuning.
const VERSION = 2;
const STATE_FILE = 'state.json';
const OPTIMIZER_JSON = 'optimizer.json';
const OPTIMIZER_BIN = 'optimizer.bin';

interface Pointer {
  format: typeof FORMAT;
  version: number;
  epoch: number;
  dir: string;
}

/** Everything besides tensors that a resumed run needs; `T` is the trainer's own record. */
export interface SnapshotFiles<T> {
  /** Completed epochs. */
  epoch: number;
  state: T;
}

export interface LoadedSnapshot<T> extends SnapshotFiles<T> {
  /** Folder holding model.json + weights.bin of the snapshot. */
  modelDir: string;
  /** Reads the optimizer state (the caller disposes the tensors). */
  readOptimizerState(): Promise<NamedTensor[]>;
}

function epochDirName(epoch: number): string {
  return `epoch-${String(epoch).padStart(4, '0')}`;
}

/**
 * Reads the current snapshot's pointer and state (no tensors yet); null when there is none. A pointer or
 * state that cannot be read is a UsageError naming the file: the folder is not ours or was edited.
 */
export async function readSnapshot<T>(outDir: string): Promise<LoadedSnapshot<T> | null> {
  const pointerFile = path.join(outDir, SNAPSHOT_POINTER);
  if (!(await isFile(pointerFile))) {
    // Version 0.1's resume files: their optimizer state has no parameter groups, so they cannot be continued.
    if (await isFile(path.join(outDir, LEGACY_POINTER))) {
      throw new UsageError(`${outDir} holds a run of an earlier version (${LEGACY_POINTER}), which this version cannot resume; start a new outDir`);
    }
    return null;
  }
  const pointer = await readJson<Pointer>(pointerFile);
  if (pointer.format !== FORMAT || typeof pointer.dir !== 'string' || !Number.isInteger(pointer.epoch)) {
    throw new UsageError(`${pointerFile} is not an efficient-densenet training snapshot`);
  }
  if (pointer.version !== VERSION) {
    throw new UsageError(`${pointerFile} has snapshot format version ${pointer.version}; this version reads ${VERSION}`);
  }
  const dir = path.join(outDir, pointer.dir);
  const state = await readJson<SnapshotFiles<T>>(path.join(dir, STATE_FILE));
  if (state.epoch !== pointer.epoch) {
    throw new UsageError(`${pointerFile} names epoch ${pointer.epoch} but ${path.join(dir, STATE_FILE)} holds epoch ${state.epoch}`);
  }
  return {
    epoch: state.epoch,
    state: state.state,
    modelDir: dir,
    readOptimizerState: async () => {
      const { specs } = await readJson<{ specs: tf.io.WeightsManifestEntry[] }>(path.join(dir, OPTIMIZER_JSON));
      const bytes = await fs.readFile(path.join(dir, OPTIMIZER_BIN));
      const map = tf.io.decodeWeights(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength), specs);
      // The manifest's order is the optimizer's (tfjs matches accumulators to variables by position).
      return specs.map((spec) => ({ name: spec.name, tensor: map[spec.name]! }));
    },
  };
}

/** Writes a complete snapshot folder, then makes it current, then removes older ones. */
export async function writeSnapshot<T>(
  outDir: string,
  epoch: number,
  model: tf.LayersModel,
  optimizerState: NamedTensor[],
  state: T,
): Promise<void> {
  const relative = path.join(SNAPSHOTS_DIR, epochDirName(epoch));
  const dir = path.join(outDir, relative);
  // A folder for this epoch that no pointer names is debris from a run killed while writing it.
  await fs.rm(dir, { recursive: true, force: true });
  await model.save(fileSystemHandler(dir));
  const { data, specs } = await tf.io.encodeWeights(optimizerState);
  await writeFileAtomic(path.join(dir, OPTIMIZER_BIN), new Uint8Array(data));
  await writeFileAtomic(path.join(dir, OPTIMIZER_JSON), JSON.stringify({ specs }));
  const files: SnapshotFiles<T> = { epoch, state };
  await writeFileAtomic(path.join(dir, STATE_FILE), JSON.stringify(files));
  const pointer: Pointer = { format: FORMAT, version: VERSION, epoch, dir: relative };
  await writeFileAtomic(path.join(outDir, SNAPSHOT_POINTER), `${JSON.stringify(pointer, null, 2)}\n`);
  await removeSnapshotsExcept(outDir, epochDirName(epoch));
}

/** Removes the pointer and every snapshot folder (a fresh run replacing an old one). */
export async function clearSnapshots(outDir: string): Promise<void> {
  await fs.rm(path.join(outDir, SNAPSHOT_POINTER), { force: true });
  await fs.rm(path.join(outDir, SNAPSHOTS_DIR), { recursive: true, force: true });
}

async function removeSnapshotsExcept(outDir: string, keep: string): Promise<void> {
  const root = path.join(outDir, SNAPSHOTS_DIR);
  const entries = await fs.readdir(root).catch(() => [] as string[]);
  await Promise.all(
    entries.filter((name) => name !== keep && /^epoch-\d+$/.test(name)).map((name) => fs.rm(path.join(root, name), { recursive: true, force: true })),
  );
}

async function readJson<T>(file: string): Promise<T> {
  let text: string;
  try {
    text = await fs.readFile(file, 'utf8');
  } catch (error) {
    throw new UsageError(`cannot read ${file}: ${(error as Error).message}`);
  }
  try {
    return JSON.parse(text) as T;
  } catch (error) {
    throw new UsageError(`${file} is not valid JSON: ${(error as Error).message}`);
  }
}

async function isFile(file: string): Promise<boolean> {
  return (await fs.stat(file).catch(() => undefined))?.isFile() ?? false;
}
