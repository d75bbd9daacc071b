/** `efficient-densenet-tfjs/weights`: safetensors files and torchvision's state_dict names, in and out. */
export {
  loadTorchvisionWeights,
  saveTorchvisionWeights,
  torchvisionSafetensorsBytes,
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
