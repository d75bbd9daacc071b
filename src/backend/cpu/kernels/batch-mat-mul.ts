/**
 * BatchMatMul and _FusedMatMul (a Dense layer's product) summed exactly: each product exact in float64,
 * the sum over K in float64, the bias added before the single rounding to float32. tfjs's own kernel sums
 * blocks of 64 terms in a double but adds the blocks into the float32 output.
 */
import * as tf from '@tensorflow/tfjs';
import { CPU_BACKEND, float32Values, isFloat32, output, stock, type CpuBackendInternals, type CpuKernelArgs, type TensorInfo } from '../internals.js';

interface Product {
  shape: number[];
  values: Float32Array;
}

/** a·b (each optionally transposed) over broadcast batch dims, plus `bias[n]` (length N or 1) if given; null if not covered. */
function exactProduct(backend: CpuBackendInternals, a: TensorInfo, b: TensorInfo, transposeA: boolean, transposeB: boolean, bias?: TensorInfo): Product | null {
  if (!isFloat32(a, b) || a.shape.length < 2 || b.shape.length < 2) return null;
  const ra = a.shape.length;
  const rb = b.shape.length;
  const m = transposeA ? a.shape[ra - 1]! : a.shape[ra - 2]!;
  const k = transposeA ? a.shape[ra - 2]! : a.shape[ra - 1]!;
  const n = transposeB ? b.shape[rb - 2]! : b.shape[rb - 1]!;
  const outerA = a.shape.slice(0, -2);
  const outerB = b.shape.slice(0, -2);
  const batchA = outerA.reduce((p, d) => p * d, 1);
  const batchB = outerB.reduce((p, d) => p * d, 1);
  // Broadcasting beyond "one side has a single matrix" is left to the stock kernel.
  const sameOuter = outerA.length === outerB.length && outerA.every((d, i) => d === outerB[i]);
  if (!sameOuter && batchA !== 1 && batchB !== 1) return null;
  if (bias && (!isFloat32(bias) || (bias.shape.reduce((p, d) => p * d, 1) !== n && bias.shape.reduce((p, d) => p * d, 1) !== 1))) return null;
  const av = float32Values(backend, a);
  const bv = float32Values(backend, b);
  const biasValues = bias ? float32Values(backend, bias) : null;
  const batches = Math.max(batchA, batchB);
  const y = new Float32Array(batches * m * n);
  const row = new Float64Array(k);
  const bt = new Float64Array(n * k);
  for (let t = 0; t < batches; t++) {
    const ao = (batchA === 1 ? 0 : t) * m * k;
    const bo = (batchB === 1 ? 0 : t) * k * n;
    if (t === 0 || batchB !== 1) {
      // b as [N][K] doubles: each dot product then reads both operands contiguously.
      for (let i = 0; i < k; i++) for (let j = 0; j < n; j++) bt[j * k + i] = transposeB ? bv[bo + j * k + i]! : bv[bo + i * n + j]!;
    }
    for (let r = 0; r < m; r++) {
      for (let i = 0; i < k; i++) row[i] = transposeA ? av[ao + i * m + r]! : av[ao + r * k + i]!;
      const yo = (t * m + r) * n;
      for (let j = 0; j < n; j++) {
        let sum = biasValues ? biasValues[biasValues.length === 1 ? 0 : j]! : 0;
        const base = j * k;
        for (let i = 0; i < k; i++) sum += row[i]! * bt[base + i]!;
        y[yo + j] = sum;
      }
    }
  }
  const outer = tf.broadcast_util.assertAndGetBroadcastShape(outerA, outerB);
  return { shape: [...outer, m, n], values: y };
}

function batchMatMul(args: CpuKernelArgs<{ a: TensorInfo; b: TensorInfo }, tf.BatchMatMulAttrs>): TensorInfo {
  const { inputs: { a, b }, backend, attrs } = args;
  const product = exactProduct(backend, a, b, !!attrs.transposeA, !!attrs.transposeB);
  return product ? output(backend, product.shape, product.values) : (stock(tf.BatchMatMul, args) as TensorInfo);
}

/** The fused product with a bias and a linear or ReLU activation (what a Dense layer runs); other fusions go to the stock kernel. */
function fusedMatMul(args: CpuKernelArgs<{ a: TensorInfo; b: TensorInfo; bias?: TensorInfo; preluActivationWeights?: TensorInfo }, tf._FusedMatMulAttrs>): TensorInfo {
  const { inputs: { a, b, bias, preluActivationWeights }, backend, attrs } = args;
  const activation = attrs.activation ?? 'linear';
  const covered = preluActivationWeights == null && (activation === 'linear' || activation === 'relu');
  const product = covered ? exactProduct(backend, a, b, !!attrs.transposeA, !!attrs.transposeB, bias ?? undefined) : null;
  if (!product) return stock(tf._FusedMatMul, args) as TensorInfo;
  if (activation === 'relu') for (let i = 0; i < product.values.length; i++) if (product.values[i]! < 0) product.values[i] = 0;
  return output(backend, product.shape, product.values);
}

export const batchMatMulExactConfig: tf.KernelConfig = {
  kernelName: tf.BatchMatMul,
  backendName: CPU_BACKEND,
  kernelFunc: batchMatMul as unknown as tf.KernelFunc,
};

export const fusedMatMulExactConfig: tf.KernelConfig = {
  kernelName: tf._FusedMatMul,
  backendName: CPU_BACKEND,
  kernelFunc: fusedMatMul as unknown as tf.KernelFunc,
};
