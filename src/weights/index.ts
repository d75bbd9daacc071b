/**
 * `efficient-densenet-tfjs/weights`: torchvision's state_dict names in and out, from safetensors files and
 * PyTorch checkpoints (`.pth`, read without Python and without running anything in them).
 */
export {
  loadTorchvisionWeights,
  readTorchvisionStateDict,
  saveTorchvisionWeights,
  type LoadTorchvisionOptions,
  type LoadTorchvisionReport,
} from './torchvision.js';
export {
  torchvisionNames,
  exportTorchvisionStateDict,
  toTorchvisionLayout,
  type TorchvisionStateDict,
  type TorchvisionTensor,
} from './torchvision-names.js';
export {
  readSafetensors,
  parseSafetensors,
  writeSafetensors,
  encodeSafetensors,
  type SafetensorsFile,
  type SafetensorsTensor,
} from './safetensors.js';
export { parseStateDict, sniffStateDictFormat, hashPrefixOf, checkHashPrefix, type ParsedStateDict, type StateDictFormat } from './state-dict.js';
export { parseTorchCheckpoint, type TorchLoadOptions, type TorchTensor } from './pth/torch-load.js';
