/**
 * Which kernels run on the project's own GEMM (./gemm.ts) instead of XNNPACK's. Both routes stay, switchable,
 * so that scripts/bench-wasm-kernels.ts (--gemm) can alternate them in one process and tests can compare
 * them. The defaults follow that measurement (DenseNet-121 112² batch 16, CPU time on a shared machine):
 * - filterGrad: the own GEMM takes 0.3–0.9× the XNNPACK route's time, in both builds;
 * - conv1x1, matMul: 0.7–0.95× (relaxed), ≈1× (plain, 0.9–1.1×) — and its K-blocked sums are more exact,
 *   which is why the plain build is used there too;
 * - convKxK: ≈1× at 28² and 14² (relaxed), 1.2–1.7× at 7² and 3² and with plain SIMD: stays on XNNPACK.
 */
export type GemmRoute = 'gemm' | 'xnnpack';
export const GEMM_ROUTES: readonly GemmRoute[] = ['gemm', 'xnnpack'];

/**
 * filterGrad: Conv2DBackpropFilter (1×1, and k×k stride 1); conv1x1: the forward Conv2D, 1×1 stride 1
 * unpadded (the naive mode's); convKxK: the forward Conv2D, k×k stride 1 (the 3×3s); matMul: batch-1 BatchMatMul (the recomputing modes' 1×1 convs and their input
 * gradients; registerWasmFastOverrides' override).
 */
export type GemmKernel = 'filterGrad' | 'conv1x1' | 'convKxK' | 'matMul';
export const GEMM_KERNELS: readonly GemmKernel[] = ['filterGrad', 'conv1x1', 'convKxK', 'matMul'];

const routes: Record<GemmKernel, GemmRoute> = { filterGrad: 'gemm', conv1x1: 'gemm', convKxK: 'xnnpack', matMul: 'gemm' };

export function gemmRoute(kernel: GemmKernel): GemmRoute {
  return routes[kernel];
}

/** Switches one kernel's route (for measurement and tests); returns the previous one. */
export function setGemmRoute(kernel: GemmKernel, route: GemmRoute): GemmRoute {
  const previous = routes[kernel];
  routes[kernel] = route;
  return previous;
}
