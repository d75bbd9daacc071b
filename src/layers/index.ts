export {
  createDenseNet,
  densenet121,
  densenet161,
  densenet169,
  densenet201,
  type CreateDenseNetOptions,
  type VariantOptions,
} from './densenet.js';
export {
  VARIANT_NAMES,
  MEMORY_MODES,
  MIN_IMAGE_SIZE,
  type DenseNetConfig,
  type DenseNetOptions,
  type DenseNetVariant,
  type MemoryMode,
  type MemoryModeAliases,
} from './config.js';
export { setMemoryMode, memoryModeOfModel } from './model-modes.js';
export { MEMORY_MODE_TABLE, type MemoryModeSpec, type StageStrategies, type ModeCost } from './memory-modes.js';
export { DenseLayer, type DenseLayerArgs } from './dense-layer.js';
export { DenseBlock, type DenseBlockArgs } from './dense-block.js';
export { Transition, type TransitionArgs } from './transition.js';
export { Stem, type StemArgs } from './stem.js';
export { FinalNorm } from './head.js';
