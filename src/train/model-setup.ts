/**
 * The model a run trains: built from a variant or configuration, given by the caller, or loaded from a saved
 * tfjs model; its classifier fitted to the number of classes; pretrained or snapshot weights loaded into it.
 */
import * as tf from '@tensorflow/tfjs';
import { fileSystemHandler } from '../io/file-system.js';
import type { DenseNetVariant } from '../layers/config.js';
import { BUILDERS, createDenseNet, inputImageSize, type CreateDenseNetOptions } from '../layers/densenet.js';
import { BASELINE_MODE, DEFAULT_RECOMPUTING_MODE, type MemoryMode } from '../layers/memory-modes.js';
import { setMemoryMode } from '../layers/model-modes.js';
import { backendTraits } from '../backend/traits.js';
import { linearUniform, seedFor } from '../layers/initializers.js';
import { classifierOf } from '../step/step.js';
import { UsageError } from '../util/errors.js';
import type { Logger } from '../util/logger.js';
import { loadTorchvisionWeights, readTorchvisionStateDict } from '../weights/torchvision.js';
import type { DataSource } from './data-source.js';
import type { Checked, RunSettings } from './options.js';
import { checkPretrained, statOf, type RunState } from './settings.js';
import type { LoadedSnapshot } from './snapshots.js';

/** Loads a saved tfjs model, first giving its input layer the wanted image size (DenseNets take any size ≥ 32). */
export async function loadTfjsModel(dir: string, imageSize: number | null): Promise<tf.LayersModel> {
  const handler = fileSystemHandler(dir);
  if (!handler.load) throw new Error('the file-system handler cannot load');
  const artifacts = await handler.load();
  const topology = artifacts.modelTopology as { config?: { layers?: { class_name?: string; config?: Record<string, unknown> }[] } } | undefined;
  if (imageSize !== null) {
    for (const layer of topology?.config?.layers ?? []) {
      if (layer.class_name === 'InputLayer' && layer.config) {
        const key = 'batch_input_shape' in layer.config ? 'batch_input_shape' : 'batchInputShape';
        layer.config[key] = [null, imageSize, imageSize, 3];
      }
    }
  }
  return tf.loadLayersModel(tf.io.fromMemory(artifacts));
}

function outputWidth(model: tf.LayersModel): number {
  const shape = model.outputs[0]!.shape;
  return shape[shape.length - 1] as number;
}

/** A new model sharing every layer but the classifier, which is re-initialised (PyTorch's nn.Linear init) at numClasses. */
function replaceClassifier(model: tf.LayersModel, numClasses: number, seed: number, disposeOld: boolean): tf.LayersModel {
  const old = classifierOf(model);
  const features = old.input as tf.SymbolicTensor;
  const fanIn = features.shape[features.shape.length - 1] as number;
  const head = tf.layers.dense({
    units: numClasses,
    name: 'classifier',
    kernelInitializer: linearUniform(fanIn, seedFor(seed, 300)),
    biasInitializer: 'zeros',
  });
  const replaced = tf.model({ inputs: model.inputs, outputs: head.apply(features) as tf.SymbolicTensor, name: model.name });
  // A caller's own model keeps its classifier; one we loaded has no other user.
  if (disposeOld) for (const weight of old.weights) weight.dispose();
  return replaced;
}

export async function buildModel(
  checked: Checked,
  settings: RunSettings,
  data: DataSource,
  logger: Logger,
  snapshot: LoadedSnapshot<RunState> | null,
): Promise<tf.LayersModel> {
  const { numClasses, imageSize } = data;
  const fresh = checked.modelKind !== 'layers' && settings.pretrained === null ? true : !(await isTfjsFolder(settings.pretrained));
  const mode = checked.memoryMode ?? (fresh ? defaultMemoryMode() : undefined);
  const pretrainedKind = settings.pretrained !== null ? await checkPretrained(settings.pretrained) : null;
  let model: tf.LayersModel;
  if (pretrainedKind === 'tfjs') {
    if (checked.modelKind === 'config' || (checked.given.model !== undefined && checked.given.model !== settings.model)) {
      logger.info(`the architecture comes from the pretrained model in ${settings.pretrained}; model ${settings.model} is not used`);
    }
    model = await loadTfjsModel(settings.pretrained!, imageSize);
    classifierOf(model);
  } else if (checked.modelKind !== 'layers' && settings.model.startsWith('layers-model:') && snapshot) {
    // Resuming a run that was handed a LayersModel, without it: the snapshot holds the architecture.
    model = await loadTfjsModel(snapshot.modelDir, imageSize);
  } else if (checked.modelKind === 'layers') {
    model = checked.layersModel!;
    const size = inputImageSize(model);
    if (size !== null && size !== imageSize) {
      throw new UsageError(`the given model takes ${size}×${size} images but imageSize is ${imageSize}`);
    }
    classifierOf(model);
  } else {
    const common = { numClasses, inputShape: [imageSize, imageSize, 3] as [number, number, number], seed: settings.seed };
    if (settings.model.startsWith('config:')) {
      // On resume without `model`, the configuration comes back from the snapshot's settings.
      const config = checked.modelConfig ?? (JSON.parse(settings.model.slice('config:'.length)) as CreateDenseNetOptions);
      if (config.numClasses !== undefined && config.numClasses !== numClasses) {
        throw new UsageError(`the model configuration has numClasses ${config.numClasses} but the data has ${numClasses} classes`);
      }
      model = createDenseNet({ ...config, ...common });
    } else {
      model = BUILDERS[settings.model as DenseNetVariant](common);
    }
  }
  if (outputWidth(model) !== numClasses) {
    logger.info(`replacing the ${outputWidth(model)}-class classifier by a new ${numClasses}-class one`);
    model = replaceClassifier(model, numClasses, settings.seed, checked.modelKind !== 'layers');
  }
  if (pretrainedKind === 'weights') {
    const tensors = await readTorchvisionStateDict(settings.pretrained!, { checkHash: checked.checkHash });
    const theirs = (tensors.get('classifier.bias') ?? tensors.get('module.classifier.bias'))?.shape[0];
    const skipClassifier = theirs !== numClasses;
    await loadTorchvisionWeights(model, tensors, { skipClassifier, logger });
  }
  if (mode !== undefined) setMemoryMode(model, mode);
  return model;
}

/** See TrainDenseNetOptions.memoryMode: the backend's trait decides. */
export function defaultMemoryMode(): MemoryMode {
  return backendTraits().recomputeByDefault ? DEFAULT_RECOMPUTING_MODE : BASELINE_MODE;
}

async function isTfjsFolder(file: string | null): Promise<boolean> {
  return file !== null && ((await statOf(file))?.isDirectory() ?? false);
}
