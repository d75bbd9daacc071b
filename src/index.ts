/**
 * efficient-densenet-tfjs: torchvision's DenseNets as TensorFlow.js LayersModels, trained naively or with
 * memory-efficient recomputation (custom gradients), with exact memory accounting.
 *
 * This entry is the model API (with memory measuring and planning); it loads neither sharp nor vega. Training lives in
 * `efficient-densenet-tfjs/train`, benchmarks and charts in `/bench`, torchvision interop in `/weights`.
 */
export * from './layers/index.js';
export { checkpoint, type CheckpointOptions } from './recompute/checkpoint.js';
export { initBackend, BACKEND_NAMES, BACKEND_ENV, type BackendName, type ResolvedBackend, type InitBackendOptions } from './backend/index.js';
export { setNumerics } from './backend/index.js';
export { NUMERICS, NUMERICS_NAMES, NUMERICS_ENV, DEFAULT_NUMERICS, type Numerics } from './backend/numerics.js';
export { measureTrainingStep, type MeasureTrainingStepOptions, type StepMeasurement, type MemoryPeak } from './memory/measure.js';
export { planMemory, applyMemoryBudget, describePlan, type MemoryPlan, type PlanMemoryOptions, type BlockPlan } from './memory/plan.js';
export { softmaxCrossEntropy } from './step/loss.js';
export { fileSystemHandler } from './io/file-system.js';
export { silentLogger, stderrLogger, type Logger } from './util/logger.js';
export { UsageError } from './util/errors.js';
export { OutOfMemoryError } from './backend/out-of-memory.js';
