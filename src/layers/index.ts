export * from './config.js';
export { DenseLayer, type DenseLayerArgs } from './dense-layer.js';
export { DenseBlock, type DenseBlockArgs } from './dense-block.js';
export { Transition, type TransitionArgs } from './transition.js';
export { Stem, type StemArgs } from './stem.js';
export { FinalNorm } from './head.js';
export { MemoryModeLayer } from './memory-mode-layer.js';
export { NormWeights } from './norm.js';
export {
  createDenseNet,
  densenet121,
  densenet161,
  densenet169,
  densenet201,
  BUILDERS,
  setMemoryEfficient,
  memoryModeOfModel,
  type CreateDenseNetOptions,
  type VariantOptions,
} from './densenet.js';
