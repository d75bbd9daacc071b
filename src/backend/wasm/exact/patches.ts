/**
 * Convolutions as implicit GEMMs for the exact kernels: the geometry, and the gathers that lay a block of
 * positions' receptive fields out as rows of a patch matrix (zeros where the window leaves the image), so
 * that one float64 GEMM sums over taps and channels together.
 */
import * as tf from '@tensorflow/tfjs';
import type { Shape4 } from '../internals.js';

export type ConvGeometry = tf.backend_util.Conv2DInfo;

/** NHWC, no dilation: what the exact kernels compute; anything else keeps the previous kernel. */
export function convGeometry(
  xShape: readonly number[], filterShape: readonly number[],
  attrs: { strides: number | [number, number]; pad: tf.Conv2DAttrs['pad']; dataFormat?: string; dilations?: number | [number, number]; dimRoundingMode?: 'floor' | 'round' | 'ceil' },
): ConvGeometry | null {
  const fmt = tf.backend_util.convertConv2DDataFormat((attrs.dataFormat ?? 'NHWC') as 'NHWC' | 'NCHW');
  if (fmt !== 'channelsLast') return null;
  const info = tf.backend_util.computeConv2DInfo(
    xShape as Shape4, filterShape as Shape4, attrs.strides, attrs.dilations ?? 1, attrs.pad, attrs.dimRoundingMode, false, fmt);
  if (info.dilationHeight !== 1 || info.dilationWidth !== 1) return null;
  return info;
}

/** A 1×1, stride-1, unpadded convolution: a plain product over the positions. */
export function isPointwise(g: ConvGeometry): boolean {
  return g.filterHeight === 1 && g.filterWidth === 1 && g.strideHeight === 1 && g.strideWidth === 1 &&
    g.padInfo.top === 0 && g.padInfo.left === 0 && g.outHeight === g.inHeight && g.outWidth === g.inWidth;
}

/**
 * Rows [p0, p0 + count) of the forward patch matrix, [positions, (i, j, c)] with positions the output's
 * (b, r, q): patch[p, (i·fw + j)·ci + c] = x[b, r·sh + i − top, q·sw + j − left, c], 0 outside the image.
 * Written widened to float64 into d64 (exact); offsets are elements of h (x) and of d64 (dst).
 */
export function gatherForward(h: Float32Array, d64: Float64Array, x: number, g: ConvGeometry, p0: number, count: number, dst: number): void {
  const { inHeight: H, inWidth: W, inChannels: ci, outHeight: OH, outWidth: OW, filterHeight: fh, filterWidth: fw,
    strideHeight: sh, strideWidth: sw } = g;
  const top = g.padInfo.top;
  const left = g.padInfo.left;
  const K = fh * fw * ci;
  for (let p = p0; p < p0 + count; p++) {
    const q = p % OW;
    const r = Math.floor(p / OW) % OH;
    const b = Math.floor(p / (OW * OH));
    let d = dst + (p - p0) * K;
    for (let i = 0; i < fh; i++) {
      const hi = r * sh + i - top;
      for (let j = 0; j < fw; j++, d += ci) {
        const wi = q * sw + j - left;
        if (hi < 0 || hi >= H || wi < 0 || wi >= W) {
          d64.fill(0, d, d + ci);
          continue;
        }
        const s = x + ((b * H + hi) * W + wi) * ci;
        for (let c = 0; c < ci; c++) d64[d + c] = h[s + c] as number;
      }
    }
  }
}

/**
 * Rows [p0, p0 + count) of the input-gradient patch matrix, [positions, (i, j, o)] with positions the input's
 * (b, h, w): patch[p, (i·fw + j)·co + o] = dy[b, r, q, o] where h = r·sh + i − top and w = q·sw + j − left,
 * 0 where no output position (r, q) exists.
 */
export function gatherInputGrad(h: Float32Array, d64: Float64Array, dy: number, g: ConvGeometry, p0: number, count: number, dst: number): void {
  const { inHeight: H, inWidth: W, outHeight: OH, outWidth: OW, outChannels: co, filterHeight: fh, filterWidth: fw,
    strideHeight: sh, strideWidth: sw } = g;
  const top = g.padInfo.top;
  const left = g.padInfo.left;
  const K = fh * fw * co;
  for (let p = p0; p < p0 + count; p++) {
    const wi = p % W;
    const hi = Math.floor(p / W) % H;
    const b = Math.floor(p / (W * H));
    let d = dst + (p - p0) * K;
    for (let i = 0; i < fh; i++) {
      const rr = hi + top - i;
      const r = rr / sh;
      for (let j = 0; j < fw; j++, d += co) {
        const qq = wi + left - j;
        const q = qq / sw;
        if (rr < 0 || rr % sh !== 0 || r >= OH || qq < 0 || qq % sw !== 0 || q >= OW) {
          d64.fill(0, d, d + co);
          continue;
        }
        const s = dy + ((b * OH + r) * OW + q) * co;
        for (let o = 0; o < co; o++) d64[d + o] = h[s + o] as number;
      }
    }
  }
}
