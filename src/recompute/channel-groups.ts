/**
 * Running a per-channel backward on groups of channels instead of the whole tensor. BN, ReLU and pooling act
 * on each channel alone and a 1×1 convolution's input gradient splits by the kernel's input rows, so a
 * recomputing backward can walk a wide tensor a slice of channels at a time: its full-size temporaries (the
 * recomputed activation, its gradient, the ReLU mask, the BN backward's terms) then shrink to the slice's
 * size, at the price of a few more, smaller kernels. The `block` memory mode does this where the temporaries
 * would otherwise set the step's peak.
 */
import * as tf from '@tensorflow/tfjs';
import type { BatchStats, NormAffine } from '../norm/batch-norm.js';

export interface ChannelRange {
  start: number;
  size: number;
}

/** [0, channels) cut into consecutive ranges of at most `width` channels (the last may be narrower). */
export function channelRanges(channels: number, width: number): ChannelRange[] {
  const step = Math.max(1, Math.floor(width));
  const ranges: ChannelRange[] = [];
  for (let start = 0; start < channels; start += step) ranges.push({ start, size: Math.min(step, channels - start) });
  return ranges;
}

/** The channels [start, start + size) of the last axis, as a new tensor. */
export function sliceChannels<T extends tf.Tensor>(x: T, range: ChannelRange): T {
  const begin = x.shape.map(() => 0);
  begin[x.rank - 1] = range.start;
  const size = x.shape.slice();
  size[x.rank - 1] = range.size;
  return tf.slice(x, begin, size) as T;
}

/** The rows [start, start + size) of a kernel's input-channel axis ([kh, kw, in, out]). */
export function sliceKernelRows(kernel: tf.Tensor4D, range: ChannelRange): tf.Tensor4D {
  const [kh, kw, , out] = kernel.shape;
  return tf.slice(kernel, [0, 0, range.start, 0], [kh, kw, range.size, out]);
}

/** A norm's affine parameters and batch statistics restricted to a channel range; `dispose` frees the slices. */
export function sliceNorm(norm: NormAffine, stats: BatchStats, range: ChannelRange): { norm: NormAffine; stats: BatchStats; dispose: () => void } {
  const [gamma, beta, mean, invStd] = [norm.gamma, norm.beta, stats.mean, stats.invStd].map((t) => sliceChannels(t, range));
  return { norm: { gamma, beta }, stats: { mean, invStd }, dispose: () => tf.dispose([gamma, beta, mean, invStd]) };
}

/** Joins per-group results along `axis`, freeing the pieces (a single piece is returned as it is). */
export function joinGroups<T extends tf.Tensor>(pieces: T[], axis: number): T {
  if (pieces.length === 1) return pieces[0];
  const joined = tf.concat(pieces, axis) as T;
  tf.dispose(pieces);
  return joined;
}
