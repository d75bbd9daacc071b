/**
 * `model.save('file://DIR')` and `tf.loadLayersModel('file://DIR/model.json')` without tfjs-node: the same
 * files tfjs-node writes (model.json + weights.bin), written atomically so an interrupted save never leaves a
 * half-written model behind. When tfjs-node is loaded it registers its own handlers and these step aside.
 * Node only: node:fs and node:path are imported when a save or load runs, so this module (part of the main
 * entry) bundles for browsers, where `initBackend` does not register the file:// router.
 */
import * as tf from '@tensorflow/tfjs';
import { writeFileAtomic } from '../util/atomic.js';
import { importNodeBuiltin } from '../util/node.js';

type NodePath = typeof import('node:path');
type NodeFs = typeof import('node:fs');

async function nodeModules(purpose: string): Promise<{ fs: NodeFs['promises']; path: NodePath }> {
  const path = await importNodeBuiltin<NodePath>('node:path', purpose);
  const { promises: fs } = await importNodeBuiltin<NodeFs>('node:fs', purpose);
  return { fs, path };
}

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
function modelPaths(path: NodePath, target: string): { dir: string; modelJson: string } {
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
  return {
    async save(artifacts: tf.io.ModelArtifacts): Promise<tf.io.SaveResult> {
      const { path } = await nodeModules(`saving a model to 'file://${target}'`);
      const { dir, modelJson } = modelPaths(path, target);
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
      const { fs, path } = await nodeModules(`loading a model from 'file://${target}'`);
      const { modelJson } = modelPaths(path, target);
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
