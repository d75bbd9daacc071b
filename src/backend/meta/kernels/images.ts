/** Image kernels: resizing (and its gradients), flipping, cropping. */
import * as tf from '@tensorflow/tfjs';
import type { MetaBackend } from '../backend.js';
import { assertNotComplex, fresh, input, withAttrs, type MetaKernelTable, type Shape4 } from '../helpers.js';

function resizeNearestDtype(b: MetaBackend, images: tf.TensorInfo): tf.DataType {
  return b.traits.resizeNearestDtype === 'input' ? images.dtype : 'float32';
}

export const imageKernels: MetaKernelTable = {
  [tf.ResizeBilinear]: withAttrs<tf.ResizeBilinearAttrs>((inputs, { size }, b, kernel) => {
    const images = input(inputs, 'images', kernel);
    assertNotComplex('resizeBilinear', images);
    const [batch, , , channels] = images.shape as Shape4;
    return fresh(b, [batch, size[0], size[1], channels], 'float32');
  }),
  [tf.ResizeBilinearGrad]: (inputs, _attrs, b, kernel) => {
    const images = input(inputs, 'images', kernel);
    const dy = input(inputs, 'dy', kernel);
    assertNotComplex('resizeBilinearGrad', dy, images);
    if (!b.traits.resizeBilinearGradSwapsHW) return fresh(b, images.shape, 'float32');
    const [batch, height, width, depth] = images.shape as Shape4;
    // Height and width swapped: tfjs-backend-cpu 4.22 does exactly this.
    return fresh(b, [batch, width, height, depth], 'float32');
  },
  [tf.ResizeNearestNeighbor]: withAttrs<tf.ResizeNearestNeighborAttrs>((inputs, { size }, b, kernel) => {
    const images = input(inputs, 'images', kernel);
    assertNotComplex('resizeNearestNeighbor', images);
    const [batch, , , channels] = images.shape as Shape4;
    return fresh(b, [batch, size[0], size[1], channels], resizeNearestDtype(b, images));
  }),
  [tf.ResizeNearestNeighborGrad]: (inputs, _attrs, b, kernel) => {
    const images = input(inputs, 'images', kernel);
    const dy = input(inputs, 'dy', kernel);
    assertNotComplex('resizeNearestNeighborGrad', dy, images);
    return fresh(b, images.shape, resizeNearestDtype(b, images));
  },
  [tf.CropAndResize]: withAttrs<tf.CropAndResizeAttrs>((inputs, { cropSize }, b, kernel) => {
    const image = input(inputs, 'image', kernel);
    const boxes = input(inputs, 'boxes', kernel);
    input(inputs, 'boxInd', kernel);
    return fresh(b, [boxes.shape[0] as number, cropSize[0], cropSize[1], image.shape[3] as number], 'float32');
  }),
  [tf.FlipLeftRight]: (inputs, _attrs, b, kernel) => {
    const image = input(inputs, 'image', kernel);
    return fresh(b, image.shape, image.dtype);
  },
};
