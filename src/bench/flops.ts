/**
 * Forward FLOPs of a DenseNet (2 per multiply-add, convolutions and the classifier; BN, ReLU and pooling
 * are negligible and not counted), from its configuration alone. A training step is counted as 3× the
 * forward (forward + input and weight gradients), the usual convention; recomputation is not counted, so
 * a memory-efficient step shows a lower effective rate for the same work.
 */
import { STEM_CONV } from '../layers/stem.js';
import type { DenseNetConfig } from '../layers/config.js';

type Architecture = Pick<DenseNetConfig, 'growthRate' | 'blockConfig' | 'numInitFeatures' | 'bnSize' | 'numClasses'>;

function convOut(size: number, kernel: number, stride: number, pad: number): number {
  return Math.floor((size + 2 * pad - kernel) / stride) + 1;
}

export function forwardFlops(arch: Architecture, height: number, width = height): number {
  let h = convOut(height, STEM_CONV.size, STEM_CONV.stride, STEM_CONV.pad);
  let w = convOut(width, STEM_CONV.size, STEM_CONV.stride, STEM_CONV.pad);
  let macs = h * w * STEM_CONV.size * STEM_CONV.size * 3 * arch.numInitFeatures;
  h = convOut(h, 3, 2, 1);
  w = convOut(w, 3, 2, 1);
  let channels = arch.numInitFeatures;
  const width1 = arch.bnSize * arch.growthRate;
  arch.blockConfig.forEach((layers, i) => {
    for (let l = 0; l < layers; l++) {
      macs += h * w * (channels * width1 + 9 * width1 * arch.growthRate);
      channels += arch.growthRate;
    }
    if (i !== arch.blockConfig.length - 1) {
      const out = Math.floor(channels / 2);
      macs += h * w * channels * out; // torchvision's order: the 1×1 conv runs before the pool
      channels = out;
      h = Math.floor(h / 2);
      w = Math.floor(w / 2);
    }
  });
  macs += channels * arch.numClasses;
  return 2 * macs;
}

export function trainingStepFlops(arch: Architecture, imageSize: number, batchSize: number): number {
  return 3 * forwardFlops(arch, imageSize) * batchSize;
}
