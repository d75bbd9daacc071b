/** Softmax. */
import * as tf from '@tensorflow/tfjs';
import { fresh, input, withAttrs, type MetaKernelTable } from '../helpers.js';

export const softmaxKernels: MetaKernelTable = {
  [tf.Softmax]: withAttrs<tf.SoftmaxAttrs>((inputs, { dim }, b, kernel) => {
    const logits = input(inputs, 'logits', kernel);
    if (b.traits.checks.has('softmaxLastDim')) {
      const rank = logits.shape.length;
      const $dim = dim === -1 ? rank - 1 : dim;
      if ($dim !== rank - 1) {
        throw Error('Softmax along a non-last dimension is not yet supported. ' + `Logits was rank ${rank} and dim was ${$dim}`);
      }
      tf.util.parseAxisParam([$dim], logits.shape);
    }
    return fresh(b, logits.shape, b.traits.softmaxDtype === 'float32' ? 'float32' : logits.dtype);
  }),
};
