/**
 * Which kernels run on the project's own GEMM (./gemm.ts) instead of XNNPACK's. Both routes stay, switchable,
 * so that scripts/bench-wasm-kernels.ts (--gemm) can alternate them in one process and tests can compare
 * them. The default, 'auto', follows that measurement (DenseNet-121 112² batch 16, CPU time, shared machine):
 * - filterGrad: the own GEMM takes 0.3–0.9× the XNNPACK route's time, in both builds → own GEMM;
 * - conv1x1, matMul: 0.7–0.95× with relaxed SIMD → own GEMM; plain SIMD 0.9–1.15×, not reliably as fast →
 *   XNNPACK (the own GEMM would still be more exact: force it with setGemmRoute(kernel, 'gemm'));
 * - convKxK: ≈1× at 28² and 14² (relaxed), 1.2–1.7× at 7² and 3² and with plain SIMD → XNNPACK.
 */
import { gemmBuild } from './gemm.js';

/** 'auto': the measured choice above; 'gemm' / 'xnnpack': forced (measurement, tests). */
export type GemmRoute = 'auto' | 'gemm' | 'xnnpack';
/** The two routes a kernel can actually take. */
export const GEMM_ROUTES = ['gemm', 'xnnpack'] as const;

/**
 * filterGrad: Conv2DBackpropFilter (1×1, and k×k stride 1); conv1x1: the forward Conv2D, 1×1 stride 1
 * unpadded (the naive mode's); convKxK: the forward Conv2D, k×k stride 1 (the 3×3s); matMul: batch-1
 * BatchMatMul (the recomputing modes' 1×1 convs and their input gradients; registerWasmFastOverrides').
 */
export type GemmKernel = 'filterGrad' | 'conv1x1' | 'convKxK' | 'matMul';
export const GEMM_KERNELS: readonly GemmKernel[] = ['filterGrad', 'conv1x1', 'convKxK', 'matMul'];

const routes: Record<GemmKernel, GemmRoute> = { filterGrad: 'auto', conv1x1: 'auto', convKxK: 'auto', matMul: 'auto' };

function automatic(kernel: GemmKernel): 'gemm' | 'xnnpack' {
  if (kernel === 'filterGrad') return 'gemm';
  if (kernel === 'convKxK') return 'xnnpack';
  return gemmBuild() === 'relaxed' ? 'gemm' : 'xnnpack';
}

/** The route `kernel` takes now. */
export function gemmRoute(kernel: GemmKernel): 'gemm' | 'xnnpack' {
  const route = routes[kernel];
  return route === 'auto' ? automatic(kernel) : route;
}

/** Sets one kernel's route (for measurement and tests); returns the previous setting. */
export function setGemmRoute(kernel: GemmKernel, route: GemmRoute): GemmRoute {
  const previous = routes[kernel];
  routes[kernel] = route;
  return previous;
}
