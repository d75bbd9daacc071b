/**
 * efficient-densenet-tfjs: torchvision's DenseNets as TensorFlow.js LayersModels, trained naively or with
 * memory-efficient recomputation (custom gradients), with exact memory accounting and benchmarks.
 */
import { registerFileSystemRouter } from './io/file-system.js';

// model.save('file://…') / tf.loadLayersModel('file://…') work on every backend, not only tfjs-node.
registerFileSystemRouter();

export * from './layers/index.js';
export { checkpoint, withIsolatedTape, type CheckpointOptions } from './checkpoint/checkpoint.js';
export { bottleneckOp, denseLayerOp, denseBlockOp, type DenseLayerParams } from './checkpoint/dense-ops.js';
export { stemTailOp, transitionOp, headOp } from './checkpoint/stage-ops.js';
export { BN_EPSILON, BN_MOMENTUM } from './checkpoint/batch-norm.js';
export { initBackend, BACKEND_NAMES, BACKEND_ENV, type BackendName, type ResolvedBackend, type InitBackendOptions } from './backend/index.js';
export { measureTrainingStep, type MeasureTrainingStepOptions, type StepMeasurement, type MemoryPeak } from './bench/measure.js';
export { BufferTracker } from './bench/buffer-tracker.js';
export { softmaxCrossEntropy, trainStep, trainableVariables } from './train/step.js';
export { fileSystemHandler } from './io/file-system.js';
export { silentLogger, stderrLogger, type Logger } from './util/logger.js';
export { UsageError } from './util/errors.js';
export {
  torchvisionNames,
  loadTorchvisionWeights,
  saveTorchvisionWeights,
  exportTorchvisionStateDict,
  toTorchvisionLayout,
  type LoadTorchvisionOptions,
  type LoadTorchvisionReport,
  type TorchvisionStateDict,
  type TorchvisionTensor,
} from './weights/torchvision.js';
export { readSafetensors, parseSafetensors, writeSafetensors, encodeSafetensors, type SafetensorsFile, type SafetensorsTensor } from './weights/safetensors.js';
export { scanImageFolder, type ImageFolder, type Sample } from './train/image-folder.js';
export { imageFolderDataset, IMAGENET_MEAN, IMAGENET_STD, type Augment, type ImageBatch, type ImageFolderDataset, type ImageFolderDatasetOptions } from './train/data.js';
export { writeSyntheticImageFolder, type SyntheticImageFolderOptions, type SyntheticVariant } from './train/synthetic.js';
export { renderLineChartSvg, type LineChartOptions } from './bench/chart.js';
export { runBenchmark, type BenchmarkOptions, type BenchReport, type BenchResult } from './bench/benchmark.js';
export { findMaxBatch, type MaxBatchOptions, type MaxBatchResult } from './bench/max-batch.js';
export { forwardFlops, trainingStepFlops } from './bench/flops.js';
export { OutOfMemoryError, explainOutOfMemory } from './backend/out-of-memory.js';
export {
  trainDenseNet,
  validateTrainOptions,
  evaluate,
  TrainingDivergedError,
  TRAIN_DEFAULTS,
  type TrainDenseNetOptions,
  type TrainResult,
  type TrainDatasets,
  type TrainBatch,
  type TrainCallbacks,
  type EpochMetrics,
  type BatchMetrics,
  type BestEpoch,
} from './train/train.js';
export { OPTIMIZER_NAMES, type OptimizerName } from './train/optimizers.js';
export { SCHEDULE_NAMES, type ScheduleName } from './train/schedule.js';
