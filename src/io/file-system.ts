/**
 * `model.save('file://DIR')` and `tf.loadLayersModel('file://DIR/model.json')` without tfjs-node: the same
 * files tfjs-node writes (model.json + weights.bin), written atomically so an interrupted save never leaves a
 * half-written model behind. When tfjs-node is loaded it registers its own handlers and these step aside.
 */
import * as tf from '@tensorflow/tfjs';
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { writeFileAtomic } from '../util/atomic.js';

const SCHEME = 'file://';
const MODEL_FILE = 'model.json';
const WEIGHTS_FILE = 'weights.bin';

let nativeFileSystem = false;

/** Called when tfjs-node is loaded: its own file:// handlers take over. */
export function setNativeFileSystem(native: boolean): void {
  nativeFileSystem = native;
}

function stripScheme(url: string): string {
  return url.slice(SCHEME.length);
}

/** The directory a save goes to: a `.json` path names the model file, anything else a directory. */
function modelPaths(target: string): { dir: string; modelJson: string } {
  if (target.endsWith('.json')) return { dir: path.dirname(target), modelJson: target };
  return { dir: target, modelJson: path.join(target, MODEL_FILE) };
}

function concatWeightData(data: tf.io.WeightData | undefined): Uint8Array {
  if (data === undefined) return new Uint8Array(0);
  const buffers = Array.isArray(data) ? data : [data];
  const total = buffers.reduce((sum, b) => sum + b.byteLength, 0);
  const out = new Uint8Array(total);
  let offset = 0;
  for (const buffer of buffers) {
    out.set(new Uint8Array(buffer), offset);
    offset += buffer.byteLength;
  }
  return out;
}

/** An IOHandler that saves to and loads from a directory on disk. */
export function fileSystemHandler(target: string): tf.io.IOHandler {
  const { dir, modelJson } = modelPaths(target);
  return {
    async save(artifacts: tf.io.ModelArtifacts): Promise<tf.io.SaveResult> {
      if (artifacts.modelTopology instanceof ArrayBuffer) {
        throw new Error('saving binary model topologies is not supported; save a tfjs LayersModel');
      }
      const weights = concatWeightData(artifacts.weightData);
      const { weightData: _omit, weightSpecs, ...rest } = artifacts;
      void _omit;
      const json = {
        ...rest,
        weightsManifest: [{ paths: [`./${WEIGHTS_FILE}`], weights: weightSpecs ?? [] }],
      };
      // Weights first, model.json last: a reader never sees a model.json whose weights are missing.
      await writeFileAtomic(path.join(dir, WEIGHTS_FILE), weights);
      await writeFileAtomic(modelJson, JSON.stringify(json));
      return { modelArtifactsInfo: tf.io.getModelArtifactsInfoForJSON({ ...artifacts, weightData: weights.buffer as ArrayBuffer }) };
    },
    async load(): Promise<tf.io.ModelArtifacts> {
      let text: string;
      try {
        text = await fs.readFile(modelJson, 'utf8');
      } catch (error) {
        throw new Error(`cannot read model file '${modelJson}': ${(error as Error).message}`);
      }
      let json: tf.io.ModelJSON;
      try {
        json = JSON.parse(text) as tf.io.ModelJSON;
      } catch (error) {
        throw new Error(`model file '${modelJson}' is not valid JSON: ${(error as Error).message}`);
      }
      return tf.io.getModelArtifactsForJSON(json, async (manifest) => {
        const specs = manifest.flatMap((group) => group.weights);
        const buffers = await Promise.all(
          manifest.flatMap((group) => group.paths).map(async (p) => {
            const file = path.join(path.dirname(modelJson), p);
            try {
              const bytes = await fs.readFile(file);
              return bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength);
            } catch (error) {
              throw new Error(`cannot read weights file '${file}' named by '${modelJson}': ${(error as Error).message}`);
            }
          }),
        );
        return [specs, tf.io.concatenateArrayBuffers(buffers)];
      });
    },
  };
}

let registered = false;

/** Registers the file:// save and load routers (idempotent). */
export function registerFileSystemRouter(): void {
  if (registered) return;
  registered = true;
  // tfjs's routers answer null for URLs they do not handle, though its IORouter type does not say so.
  const router = ((url: string | string[]) => {
    if (nativeFileSystem) return null;
    const target = Array.isArray(url) ? url[0] : url;
    return typeof target === 'string' && target.startsWith(SCHEME) ? fileSystemHandler(stripScheme(target)) : null;
  }) as Parameters<typeof tf.io.registerSaveRouter>[0];
  tf.io.registerSaveRouter(router);
  tf.io.registerLoadRouter(router);
}
