/**
 * An override of the wasm Conv2D for 1×1 stride-1 unpadded convolutions (DenseNet's bottlenecks and
 * transitions): one call of the project's own GEMM, y[P, cout] = x[P, cin]·w[cin, cout], reading x and w in
 * place. Its K-blocked, fused (where relaxed SIMD exists) sums are more exact than XNNPACK's sequential
 * unfused ones, at equal or better speed (see gemm/routes.ts). Every other convolution goes to the original.
 */
import * as tf from '@tensorflow/tfjs';
import { wasmGemm } from '../gemm/gemm.js';
import { gemmRoute } from '../gemm/routes.js';
import {
  byteOffsetOf, originalKernelFunc, wasmKernel, zeroFill, type Shape4, type TensorInfo, type WasmKernelArgs,
} from '../internals.js';

function conv2D1x1(args: WasmKernelArgs<tf.Conv2DInputs, tf.Conv2DAttrs>): TensorInfo | TensorInfo[] {
  const { inputs: { x, filter }, backend, attrs } = args;
  const original = (): TensorInfo | TensorInfo[] =>
    originalKernelFunc(tf.Conv2D)({ inputs: { x, filter }, backend, attrs: attrs as unknown as tf.NamedAttrMap });
  if (gemmRoute('conv1x1') !== 'gemm' || x.dtype !== 'float32' || filter.dtype !== 'float32' ||
      filter.shape[0] !== 1 || filter.shape[1] !== 1) {
    return original();
  }
  const fmt = tf.backend_util.convertConv2DDataFormat(attrs.dataFormat);
  if (fmt !== 'channelsLast') return original();
  const info = tf.backend_util.computeConv2DInfo(
    x.shape as Shape4, filter.shape as Shape4, attrs.strides, attrs.dilations, attrs.pad, attrs.dimRoundingMode, false, fmt);
  const { padInfo } = info;
  if (info.strideHeight !== 1 || info.strideWidth !== 1 || info.dilationHeight !== 1 || info.dilationWidth !== 1 ||
      padInfo.top !== 0 || padInfo.bottom !== 0 || padInfo.left !== 0 || padInfo.right !== 0) {
    return original();
  }
  const { batchSize: n, outHeight: h, outWidth: w, inChannels: cin, outChannels: cout } = info;
  const out = backend.makeOutput([n, h, w, cout], 'float32');
  const p = n * h * w;
  zeroFill(backend, out, p * cout);
  wasmGemm(backend.wasm, [{
    a: byteOffsetOf(backend, x), sk: 4, sm: 4 * cin, b: byteOffsetOf(backend, filter), ldb: 4 * cout,
    c: byteOffsetOf(backend, out), ldc: 4 * cout, m: p, n: cout, k: cin,
  }]);
  return out;
}

/** Conv2D for 'wasm': 1×1 stride-1 unpadded NHWC float32 on the own GEMM, the rest on the original kernel. */
export const conv2D1x1Config = wasmKernel(tf.Conv2D, conv2D1x1);
