/** A fast override of the wasm Conv2DBackpropInput. */
import * as tf from '@tensorflow/tfjs';
import {
  heap, offsetOf, padV2, release, reshape, run, wasmKernel,
  type Shape4, type TensorInfo, type WasmKernelArgs,
} from '../internals.js';

/**
 * The wasm Conv2DBackpropInput is a direct loop (~2.3 GFLOP/s). For stride 1
 * dx is the "full" correlation of dy with the spatially flipped, in/out-
 * swapped filter, which XNNPACK's Conv2D runs at forward speed. Stride s is
 * reduced to stride 1 by interleaving s-1 zeros into dy (a 6-D PadV2 plus
 * reshapes), costing s² more multiply-adds but still several times faster.
 */
function conv2DBackpropInputFast(
  { inputs, backend, attrs }: WasmKernelArgs<tf.Conv2DBackpropInputInputs, tf.Conv2DBackpropInputAttrs>,
): TensorInfo {
  const { dy, filter } = inputs;
  const fallback = () => run(backend, tf.Conv2DBackpropInput, inputs, attrs);
  if (dy.dtype !== 'float32' || filter.dtype !== 'float32') return fallback();
  const fmt = tf.backend_util.convertConv2DDataFormat(attrs.dataFormat);
  if (fmt !== 'channelsLast') return fallback();
  const info = tf.backend_util.computeConv2DInfo(
    attrs.inputShape, filter.shape as Shape4, attrs.strides, 1, attrs.pad, attrs.dimRoundingMode, false, fmt);
  const {
    batchSize: n, inHeight: hIn, inWidth: wIn, inChannels: cin, outHeight: oh, outWidth: ow,
    outChannels: cout, filterHeight: kh, filterWidth: kw, strideHeight: sh, strideWidth: sw, padInfo,
  } = info;
  const padT = kh - 1 - padInfo.top;
  const padL = kw - 1 - padInfo.left;
  if (padT < 0 || padL < 0 || n * hIn * wIn * cin === 0 || oh * ow * cout === 0) return fallback();

  // W'[i, j, co, ci] = W[kh-1-i, kw-1-j, ci, co], written directly: the wasm
  // Reverse kernel alone costs ~1 ms even on a 37K-element filter.
  const wT = backend.makeOutput([kh, kw, cout, cin], 'float32');
  {
    const h = heap(backend);
    const src = offsetOf(backend, filter);
    const dst = offsetOf(backend, wT);
    for (let i = 0; i < kh; i++) {
      for (let j = 0; j < kw; j++) {
        const s0 = src + ((kh - 1 - i) * kw + (kw - 1 - j)) * cin * cout;
        const d0 = dst + (i * kw + j) * cout * cin;
        for (let ci = 0; ci < cin; ci++) {
          for (let co = 0; co < cout; co++) h[d0 + co * cin + ci] = h[s0 + ci * cout + co] as number;
        }
      }
    }
  }

  let src: TensorInfo;
  let lenH = oh;
  let lenW = ow;
  if (sh === 1 && sw === 1) {
    src = reshape(backend, dy, dy.shape);
  } else {
    const dy6 = reshape(backend, dy, [n, oh, 1, ow, 1, cout]);
    const padded = padV2(backend, dy6, [[0, 0], [0, 0], [0, sh - 1], [0, 0], [0, sw - 1], [0, 0]]);
    release(backend, dy6);
    lenH = oh * sh;
    lenW = ow * sw;
    src = reshape(backend, padded, [n, lenH, lenW, cout]);
    release(backend, padded);
  }
  // Bottom/right padding that makes the correlation produce exactly hIn×wIn;
  // when negative, trailing rows of the dilated dy are never read: crop them.
  let padBot = hIn + kh - 1 - padT - lenH;
  let padRight = wIn + kw - 1 - padL - lenW;
  if (padBot < 0 || padRight < 0) {
    const cropH = lenH + Math.min(0, padBot);
    const cropW = lenW + Math.min(0, padRight);
    const cropped = run(backend, tf.Slice, { x: src }, { begin: [0, 0, 0, 0], size: [n, cropH, cropW, cout] } satisfies tf.SliceAttrs);
    release(backend, src);
    src = cropped;
    padBot = Math.max(0, padBot);
    padRight = Math.max(0, padRight);
  }
  const dx = run(backend, tf.Conv2D, { x: src, filter: wT }, {
    strides: [1, 1],
    pad: [[0, 0], [padT, padBot], [padL, padRight], [0, 0]],
    dataFormat: 'NHWC',
    dilations: [1, 1],
  } satisfies tf.Conv2DAttrs);
  release(backend, src, wT);
  return dx;
}


/** Conv2DBackpropInput for 'wasm' at XNNPACK's forward speed (float32 NHWC; other cases fall back). */
export const conv2DBackpropInputFastConfig = wasmKernel(tf.Conv2DBackpropInput, conv2DBackpropInputFast);
