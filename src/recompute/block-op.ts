/**
 * The `block` memory mode's ops: keep a dense block's output and nothing else of it.
 * - `denseBlockRecomputeOp`: a whole dense block as one op that keeps only its output (the block input and every
 *   layer's new features are channel slices of it), per-channel statistics and dropout masks. Unlike
 *   `denseBlockOp` it does not keep the 1×1 outputs (4× the new features): its backward recomputes each layer's
 *   1×1 output from the prefix of the output it walks anyway (one extra 1×1 convolution per layer), then runs
 *   the layer's usual recomputing backward (dense-ops.ts) — the bottleneck half a group of channels at a time,
 *   with one gradient accumulator per channel chunk instead of one buffer for the whole prefix, so that no
 *   temporary ever spans the prefix and no prefix-wide gradient is copied per layer.
 * Each frees the gradient it receives once it has used it (tfjs's engine would keep it until the whole
 * backward ends); in a DenseNet each op's output has exactly one consumer, so nothing else reads it.
 */
import * as tf from '@tensorflow/tfjs';
import { bnReluConsuming, type BatchStats } from '../norm/batch-norm.js';
import { channelRanges, joinGroups, sliceChannels, sliceKernelRows, sliceNorm, type ChannelRange } from './channel-groups.js';
import { customOp, release } from '../ops/custom-op.js';
import {
  bottleneckBackward,
  conv1x1,
  denseLayerForward,
  layerParamTensors,
  newFeaturesBackward,
  paramsFromSaved,
  PARAMS_PER_LAYER,
  statsTensors,
  type DenseLayerParams,

} from './dense-ops.js';
import { perLayerDropout, type BlockDropout } from '../ops/dropout.js';

/**
 * Channel groups per block output: the widest temporary of a layer's bottleneck backward spans at most this
 * fraction of the block's output. 4 keeps DenseNet-201's block-1 backward under the size of two block outputs
 * while adding few kernels (block 1 of a torchvision DenseNet: groups of 64 channels).
 */
export const GROUPS_PER_BLOCK_OUTPUT = 4;

/** Consecutive chunks merged into groups of at most `width` channels (a wider chunk is a group of its own). */
function chunkGroups(chunkSizes: number[], width: number): Array<ChannelRange & { first: number; count: number }> {
  const groups: Array<ChannelRange & { first: number; count: number }> = [];
  let start = 0;
  for (let i = 0; i < chunkSizes.length; i++) {
    const last = groups[groups.length - 1];
    if (last && last.size + chunkSizes[i] <= width) {
      last.size += chunkSizes[i];
      last.count++;
    } else {
      groups.push({ start, size: chunkSizes[i], first: i, count: 1 });
    }
    start += chunkSizes[i];
  }
  return groups;
}

/** Adds a group's input gradient into the accumulators of the chunks it spans; frees dx and the old sums. */
function accumulate(acc: tf.Tensor4D[], chunkSizes: number[], group: { first: number; count: number }, dx: tf.Tensor4D): void {
  let offset = 0;
  for (let i = group.first; i < group.first + group.count; i++) {
    const piece = group.count === 1 ? dx : sliceChannels(dx, { start: offset, size: chunkSizes[i] });
    const sum = tf.add(acc[i], piece) as tf.Tensor4D;
    release(acc[i], piece === dx ? undefined : piece);
    acc[i] = sum;
    offset += chunkSizes[i];
  }
  dx.dispose();
}

/** Per-layer statistics (and dropout mask) as saved by the op, in this order. */
function savedLayerState(saved: tf.Tensor[], hasMask: boolean): { stats1: BatchStats; stats2: BatchStats; mask?: tf.Tensor } {
  const [mean1, invStd1, mean2, invStd2, mask] = saved;
  return {
    stats1: { mean: mean1 as tf.Tensor1D, invStd: invStd1 as tf.Tensor1D },
    stats2: { mean: mean2 as tf.Tensor1D, invStd: invStd2 as tf.Tensor1D },
    mask: hasMask ? mask : undefined,
  };
}

/**
 * A whole dense block as one op over (block input, every layer's six weights) that keeps only its output.
 * Same values and gradients as the naive block; see the file comment for how its backward stays small.
 */
export function denseBlockRecomputeOp(input: tf.Tensor4D, layers: DenseLayerParams[], dropout?: BlockDropout): tf.Tensor4D {
  const specs = perLayerDropout(layers.length, dropout);
  const hasMask = !!specs[0] && specs[0].rate > 0;
  const stateSize = 4 + (hasMask ? 1 : 0);
  const inputChannels = input.shape[3];
  const growths = layers.map((layer) => layer.kernel2.shape[3]);
  return customOp<tf.Tensor4D>((inputs, save) => {
    const [x0] = inputs as tf.Tensor4D[];
    const state: tf.Tensor[] = [];
    let current = x0;
    for (const [l, params] of layers.entries()) {
      const { features, tape } = denseLayerForward(current, params, specs[l]);
      tape.z.dispose();
      state.push(...statsTensors(tape.stats1), ...statsTensors(tape.stats2), ...(tape.mask ? [tape.mask] : []));
      const next = tf.concat([current, features], 3);
      features.dispose();
      if (current !== x0) current.dispose();
      current = next;
    }
    const output = current;
    save([output, ...inputs.slice(1), ...state]);
    return {
      value: output,
      gradFunc: (dOutput, saved) => {
        const [out] = saved as tf.Tensor4D[];
        const params = layers.map((like, l) => paramsFromSaved(saved.slice(1 + l * PARAMS_PER_LAYER, 1 + (l + 1) * PARAMS_PER_LAYER), like));
        const stateStart = 1 + layers.length * PARAMS_PER_LAYER;
        const groupWidth = Math.ceil(out.shape[3] / GROUPS_PER_BLOCK_OUTPUT);
        // One gradient accumulator per chunk: the block input (cut to the group width) and each layer's features.
        const chunkSizes = [...channelRanges(inputChannels, groupWidth).map((r) => r.size), ...growths];
        const inputChunks = chunkSizes.length - layers.length;
        const acc = tf.split(dOutput, chunkSizes, 3) as tf.Tensor4D[];
        dOutput.dispose();
        const grads: tf.Tensor[][] = new Array(layers.length);
        let width = out.shape[3];
        for (let l = layers.length - 1; l >= 0; l--) {
          width -= growths[l];
          const p = params[l];
          const { stats1, stats2, mask } = savedLayerState(saved.slice(stateStart + l * stateSize, stateStart + (l + 1) * stateSize), hasMask);
          // The 1×1 output, recomputed from the prefix: the one extra convolution of this mode.
          const activated = bnReluConsuming(sliceChannels(out, { start: 0, size: width }), p.norm1, stats1);
          const z = conv1x1(activated as tf.Tensor4D, p.kernel1);
          activated.dispose();
          // The second half, a group of the 1×1 output's channels at a time (its BN, ReLU and the 3×3
          // convolution's gradients split by those channels); z is cut up front so each piece dies when used.
          const zRanges = channelRanges(z.shape[3], groupWidth);
          const zPieces = zRanges.length === 1 ? [z] : (tf.split(z, zRanges.map((r) => r.size), 3) as tf.Tensor4D[]);
          if (zPieces[0] !== z) z.dispose();
          const dFeatures = acc[inputChunks + l];
          const secondGrads = zRanges.map((range, h) => {
            const slice = sliceNorm(p.norm2, stats2, range);
            const rows = sliceKernelRows(p.kernel2, range);
            const grads = newFeaturesBackward(zPieces[h], slice.norm, rows, slice.stats, dFeatures, mask);
            release(zPieces[h], rows);
            slice.dispose();
            return grads;
          });
          release(dFeatures, mask, stats2.mean, stats2.invStd);
          const second = {
            dz: joinGroups(secondGrads.map((g) => g.dz), 3),
            dGamma: joinGroups(secondGrads.map((g) => g.dGamma), 0),
            dBeta: joinGroups(secondGrads.map((g) => g.dBeta), 0),
            dKernel: joinGroups(secondGrads.map((g) => g.dKernel), 2),
          };
          const firstGrads: Array<ReturnType<typeof bottleneckBackward>> = [];
          for (const group of chunkGroups(chunkSizes.slice(0, inputChunks + l), groupWidth)) {
            const slice = sliceNorm(p.norm1, stats1, group);
            const xGroup = sliceChannels(out, group);
            const rows = sliceKernelRows(p.kernel1, group);
            const first = bottleneckBackward(xGroup, slice.norm, rows, slice.stats, second.dz);
            release(xGroup, rows);
            slice.dispose();
            accumulate(acc, chunkSizes, group, first.dx);
            firstGrads.push(first);
          }
          release(second.dz, stats1.mean, stats1.invStd);
          grads[l] = [
            joinGroups(firstGrads.map((g) => g.dGamma), 0),
            joinGroups(firstGrads.map((g) => g.dBeta), 0),
            joinGroups(firstGrads.map((g) => g.dKernel), 2),
            second.dGamma,
            second.dBeta,
            second.dKernel,
          ];
        }
        release(out);
        const dInput = joinGroups(acc.slice(0, inputChunks), 3);
        if (dInput.shape[3] !== inputChannels) throw new Error('denseBlockRecomputeOp: gradient width does not match the block input');
        return [dInput, ...grads.flat()];
      },
    };
  })([input, ...layers.flatMap(layerParamTensors)]);
}
