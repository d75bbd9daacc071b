/** A fast override of the wasm Slice for the slices DenseNets take: channel ranges of NHWC tensors. */
import * as tf from '@tensorflow/tfjs';
import { heap, offsetOf, originalKernelFunc, sizeOf, wasmKernel, type TensorInfo, type WasmKernelArgs } from '../internals.js';

/** Below this many floats per contiguous run a per-run copy loses to the stock kernel. */
const MIN_RUN = 16;

/**
 * Slice of a float32 tensor as one memmove (copyWithin) per contiguous run of its last axis. The stock kernel
 * copies element by element; a DenseNet training step slices every dense layer's input (a channel prefix of the
 * block's output) and gradient in its recomputing backward, 7% of a DenseNet-121 step on wasm.
 */
function sliceFast(args: WasmKernelArgs<tf.SliceInputs, tf.SliceAttrs>): TensorInfo | TensorInfo[] {
  const { inputs, backend, attrs } = args;
  const { x } = inputs;
  const rank = x.shape.length;
  if (x.dtype !== 'float32' || rank < 2) return originalKernelFunc(tf.Slice)(args as never);
  const [begin, size] = tf.slice_util.parseSliceParams(x as tf.Tensor, attrs.begin, attrs.size);
  // The contiguous run: the last axis, widened over trailing axes the slice takes whole.
  let k = rank - 1;
  let inner = 1;
  while (k > 0 && begin[k] === 0 && size[k] === x.shape[k]) inner *= x.shape[k--]!;
  const run = size[k]! * inner;
  if (run < MIN_RUN || sizeOf(size) === 0) return originalKernelFunc(tf.Slice)(args as never);
  const out = backend.makeOutput(size, 'float32');
  const h = heap(backend);
  const strides = tf.util.computeStrides(x.shape);
  const src = offsetOf(backend, x) + begin[k]! * (k < rank - 1 ? strides[k]! : 1);
  let dst = offsetOf(backend, out);
  // Every index of the axes before k inside the slice, odometer style.
  const outer = size.slice(0, k);
  const index = new Array<number>(k).fill(0);
  const runs = sizeOf(outer);
  for (let r = 0; r < runs; r++) {
    let from = src;
    for (let a = 0; a < k; a++) from += (begin[a]! + index[a]!) * strides[a]!;
    h.copyWithin(dst, from, from + run);
    dst += run;
    for (let a = k - 1; a >= 0; a--) {
      if (++index[a]! < outer[a]!) break;
      index[a] = 0;
    }
  }
  return out;
}

/** Slice for 'wasm' copying whole runs of the last axis. */
export const sliceFastConfig = wasmKernel(tf.Slice, sliceFast);
