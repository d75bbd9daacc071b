/**
 * Conv2DBackpropFilter, which tfjs-backend-wasm 4.22 lacks (so stock wasm cannot train a CNN). The
 * arithmetic runs in the backend's XNNPACK BatchMatMul (see ../filter-grad-gemms.ts); this file lays the
 * input out for it.
 */
import * as tf from '@tensorflow/tfjs';
import {
  assertFloat32, heap, offsetOf, padV2, release, reshape, transpose, wasmKernel,
  type Shape4, type TensorInfo, type WasmKernelArgs,
} from '../internals.js';
import {
  filterGrad1x1, filterGrad1x1Gemm, shiftedTapGemms, shiftedTapGemmsOwn, type Tap,
} from '../filter-grad-gemms.js';
import { gemmRoute } from '../gemm/routes.js';

/**
 * Writes the zero-padded input, split into stride phases and channel-major,
 * into dst: for each phase (a, b) a block [cin + 1, N·Hq·Wq] holding
 * x_padded[n, hq·sh + a, wq·sw + b, c] at [c, (n·Hq + hq)·Wq + wq], and a
 * zero row c = cin. One pass in JS over heap memory: the wasm Transpose is a
 * naive element loop (and a per-element generic loop above rank 4) and
 * StridedSlice measured ~30 ns/element, so pad + phase-split + transpose as
 * kernels would cost three or more slower passes. Each source row (≤ a few
 * tens of KB) is read from cache while destination writes are sequential
 * runs of Wq floats.
 */
function packPhases(
  h: Float32Array,
  xOff: number,
  dstOff: number,
  g: { n: number; hIn: number; wIn: number; cin: number; top: number; left: number;
    sh: number; sw: number; pa: number; pb: number; hq: number; wq: number },
): void {
  const { n, hIn, wIn, cin, top, left, sh, sw, pa, pb, hq, wq } = g;
  const r = n * hq * wq;
  h.fill(0, dstOff, dstOff + pa * pb * (cin + 1) * r);
  for (let a = 0; a < pa; a++) {
    for (let b = 0; b < pb; b++) {
      const phaseBase = dstOff + (a * pb + b) * (cin + 1) * r;
      const wq0 = Math.max(0, Math.ceil((left - b) / sw));
      const wq1 = Math.min(wq, Math.floor((wIn - 1 + left - b) / sw) + 1);
      if (wq1 <= wq0) continue;
      const step = sw * cin;
      for (let img = 0; img < n; img++) {
        for (let row = 0; row < hq; row++) {
          const hi = row * sh + a - top;
          if (hi < 0 || hi >= hIn) continue;
          const srcRow = xOff + ((img * hIn + hi) * wIn + (wq0 * sw + b - left)) * cin;
          const dstRow = phaseBase + (img * hq + row) * wq;
          for (let c = 0; c < cin; c++) {
            let s = srcRow + c;
            const d = dstRow + c * r;
            for (let col = wq0; col < wq1; col++) {
              h[d + col] = h[s] as number;
              s += step;
            }
          }
        }
      }
    }
  }
}

function conv2DBackpropFilter(
  { inputs, backend, attrs }: WasmKernelArgs<tf.Conv2DBackpropFilterInputs, tf.Conv2DBackpropFilterAttrs>,
): TensorInfo {
  const { x, dy } = inputs;
  const { strides, pad, dataFormat, dimRoundingMode, filterShape } = attrs;
  assertFloat32('Conv2DBackpropFilter', x, dy);
  const fmt = tf.backend_util.convertConv2DDataFormat(dataFormat);
  if (fmt !== 'channelsLast') {
    throw new Error(`wasm-kernels: Conv2DBackpropFilter supports NHWC only, got ${dataFormat}`);
  }
  const info = tf.backend_util.computeConv2DInfo(
    x.shape as Shape4, filterShape, strides, 1, pad, dimRoundingMode, false, fmt);
  const {
    batchSize: n, inHeight: hIn, inWidth: wIn, inChannels: cin, outHeight: oh, outWidth: ow,
    outChannels: cout, filterHeight: kh, filterWidth: kw, strideHeight: sh, strideWidth: sw, padInfo,
  } = info;

  const out = backend.makeOutput([kh, kw, cin, cout], 'float32');
  if (n * oh * ow === 0 || n * hIn * wIn === 0 || cin * cout === 0) {
    const o = offsetOf(backend, out);
    heap(backend).fill(0, o, o + kh * kw * cin * cout);
    return out;
  }

  const noPad = padInfo.top === 0 && padInfo.left === 0 && padInfo.bottom === 0 && padInfo.right === 0;
  if (kh === 1 && kw === 1 && sh === 1 && sw === 1 && noPad && oh === hIn && ow === wIn) {
    if (gemmRoute('filterGrad') === 'gemm') filterGrad1x1Gemm(backend, x, dy, n * hIn * wIn, cin, cout, out);
    else filterGrad1x1(backend, x, dy, n * hIn * wIn, cin, cout, out);
    return out;
  }

  // Phase grid: phase (a, b) holds padded rows a, a+sh, ... Hq rows cover
  // every row any tap of any phase reads, (oh-1)·sh + kh - 1 at most.
  const hq = Math.ceil(((oh - 1) * sh + kh) / sh);
  const wq = Math.ceil(((ow - 1) * sw + kw) / sw);
  const pa = Math.min(sh, kh);
  const pb = Math.min(sw, kw);
  const r = n * hq * wq;

  const padBottom = hq - hIn - padInfo.top;
  const padRight = wq - wIn - padInfo.left;

  const dyg4 = hq === oh && wq === ow
    ? reshape(backend, dy, dy.shape)
    : padV2(backend, dy, [[0, 0], [0, hq - oh], [0, wq - ow], [0, 0]]);
  const dyg = reshape(backend, dyg4, [r, cout]);
  release(backend, dyg4);

  if (sh === 1 && sw === 1 && padBottom >= 0 && padRight >= 0 && gemmRoute('filterGrad') === 'gemm') {
    // NHWC on the grid, plus one zero image that the last image's shifted windows run into.
    const xp = padV2(backend, x, [[0, 1], [padInfo.top, padBottom], [padInfo.left, padRight], [0, 0]]);
    const taps = [];
    for (let i = 0; i < kh; i++) {
      for (let j = 0; j < kw; j++) taps.push({ shift: i * wq + j, outOffset: (i * kw + j) * cin * cout });
    }
    shiftedTapGemmsOwn(backend, xp, cin, r, dyg, cout, taps, out);
    release(backend, xp, dyg);
    return out;
  }

  let xpT: TensorInfo;
  if (sh === 1 && sw === 1 && padBottom >= 0 && padRight >= 0) {
    // Stride 1: PadV2 (adding the zero channel) + a 2-D Transpose measured
    // faster than the JS packer, whose strided reads cost more at large cin.
    const xp = padV2(backend, x, [[0, 0], [padInfo.top, padBottom], [padInfo.left, padRight], [0, 1]]);
    const x2 = reshape(backend, xp, [r, cin + 1]);
    xpT = transpose(backend, x2, [1, 0]);
    release(backend, xp, x2);
  } else {
    xpT = backend.makeOutput([pa * pb * (cin + 1) * r], 'float32');
    packPhases(heap(backend), offsetOf(backend, x), offsetOf(backend, xpT), {
      n, hIn, wIn, cin, top: padInfo.top, left: padInfo.left, sh, sw, pa, pb, hq, wq,
    });
  }

  const taps: Tap[] = [];
  for (let i = 0; i < kh; i++) {
    for (let j = 0; j < kw; j++) {
      const phase = (i % sh) * pb + (j % sw);
      taps.push({
        src: phase * (cin + 1) * r + Math.floor(i / sh) * wq + Math.floor(j / sw),
        outOffset: (i * kw + j) * cin * cout,
      });
    }
  }
  shiftedTapGemms(backend, xpT, cin, r, dyg, cout, taps, out);
  release(backend, xpT, dyg);
  return out;
}


/** Conv2DBackpropFilter for 'wasm' (float32, NHWC). */
export const conv2DBackpropFilterConfig = wasmKernel(tf.Conv2DBackpropFilter, conv2DBackpropFilter);
