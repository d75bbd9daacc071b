/**
 * An override of the wasm Conv2D for stride-1 undilated convolutions on the project's own GEMM, whose
 * K-blocked, fused (where relaxed SIMD exists) sums are more exact than XNNPACK's sequential unfused ones:
 * - 1×1 unpadded (DenseNet's bottlenecks and transitions): one GEMM, y[P, cout] = x[P, cin]·w[cin, cout],
 *   x and w read in place (by default with relaxed SIMD only: gemm/routes.ts);
 * - k×k (the 3×3s): one GEMM per tap and image over the zero-padded input, accumulated in place (below);
 *   off by default (gemm/routes.ts: not faster than XNNPACK's convolution).
 * Every other convolution goes to the original kernel.
 */
import * as tf from '@tensorflow/tfjs';
import { wasmGemm } from '../gemm/gemm.js';
import { gemmRoute } from '../gemm/routes.js';
import {
  byteOffsetOf, heap, offsetOf, originalKernelFunc, padV2, release, wasmKernel, zeroFill,
  type Shape4, type TensorInfo, type WasmBackendInternals, type WasmKernelArgs,
} from '../internals.js';

/**
 * k×k stride 1: with x zero-padded to xp [N, Hq, Wq, cin] (plus one zero image the last windows run into),
 * output row r of image b, read as a run of Wq grid columns, is
 *   yw[b, r, :, :] = Σ_taps xp[b, r + i, j :, :] · w[i, j]
 * so each (tap, image) is one GEMM with A = xp at a row offset ([M = oh·Wq, K = cin], read in place) and
 * B = w[i, j] ([cin, cout]), accumulating into yw [N, oh, Wq, cout]; the ow valid columns are copied out.
 * (One GEMM per tap over the whole grid, N·Hq·Wq rows, measured slower at every DenseNet size.)
 */
function convTaps(backend: WasmBackendInternals, x: TensorInfo, filter: TensorInfo, info: tf.backend_util.Conv2DInfo): TensorInfo {
  const { batchSize: n, inHeight: h, inWidth: w, inChannels: cin, outHeight: oh, outWidth: ow, outChannels: cout,
    filterHeight: kh, filterWidth: kw, padInfo } = info;
  const hq = oh + kh - 1;
  const wq = ow + kw - 1;
  const xp = padV2(backend, x, [[0, 1], [padInfo.top, hq - h - padInfo.top], [padInfo.left, wq - w - padInfo.left], [0, 0]]);
  const yw = backend.makeOutput([n, oh, wq, cout], 'float32');
  zeroFill(backend, yw, n * oh * wq * cout);
  const xBase = byteOffsetOf(backend, xp);
  const wBase = byteOffsetOf(backend, filter);
  const yBase = byteOffsetOf(backend, yw);
  const ops = [];
  for (let b = 0; b < n; b++) {
    for (let i = 0; i < kh; i++) {
      for (let j = 0; j < kw; j++) {
        ops.push({
          a: xBase + 4 * ((b * hq + i) * wq + j) * cin, sk: 4, sm: 4 * cin,
          b: wBase + 4 * (i * kw + j) * cin * cout, ldb: 4 * cout,
          c: yBase + 4 * b * oh * wq * cout, ldc: 4 * cout, m: oh * wq, n: cout, k: cin,
        });
      }
    }
  }
  wasmGemm(backend.wasm, ops);
  release(backend, xp);
  const out = backend.makeOutput([n, oh, ow, cout], 'float32');
  const hp = heap(backend);
  const src = offsetOf(backend, yw);
  const dst = offsetOf(backend, out);
  for (let row = 0; row < n * oh; row++) hp.copyWithin(dst + row * ow * cout, src + row * wq * cout, src + row * wq * cout + ow * cout);
  release(backend, yw);
  return out;
}

function conv2DGemm(args: WasmKernelArgs<tf.Conv2DInputs, tf.Conv2DAttrs>): TensorInfo | TensorInfo[] {
  const { inputs: { x, filter }, backend, attrs } = args;
  const original = (): TensorInfo | TensorInfo[] =>
    originalKernelFunc(tf.Conv2D)({ inputs: { x, filter }, backend, attrs: attrs as unknown as tf.NamedAttrMap });
  const pointwise = filter.shape[0] === 1 && filter.shape[1] === 1;
  if (gemmRoute(pointwise ? 'conv1x1' : 'convKxK') !== 'gemm' || x.dtype !== 'float32' || filter.dtype !== 'float32') {
    return original();
  }
  const fmt = tf.backend_util.convertConv2DDataFormat(attrs.dataFormat);
  if (fmt !== 'channelsLast') return original();
  const info = tf.backend_util.computeConv2DInfo(
    x.shape as Shape4, filter.shape as Shape4, attrs.strides, attrs.dilations, attrs.pad, attrs.dimRoundingMode, false, fmt);
  const { padInfo } = info;
  if (info.strideHeight !== 1 || info.strideWidth !== 1 || info.dilationHeight !== 1 || info.dilationWidth !== 1 ||
      info.outHeight * info.outWidth * info.batchSize === 0 || info.inChannels === 0) {
    return original();
  }
  const unpadded = padInfo.top === 0 && padInfo.bottom === 0 && padInfo.left === 0 && padInfo.right === 0;
  if (!pointwise || !unpadded) return convTaps(backend, x, filter, info);
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

/** Conv2D for 'wasm': stride-1 undilated NHWC float32 on the own GEMM, the rest on the original kernel. */
export const conv2DGemmConfig = wasmKernel(tf.Conv2D, conv2DGemm);
