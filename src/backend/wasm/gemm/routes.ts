/**
 * Which kernels run on the project's own GEMM (./gemm.ts) instead of XNNPACK's. Both routes stay, switchable,
 * so that scripts/bench-wasm-kernels.ts can alternate them in one process and tests can compare them. The
 * defaults follow that measurement (DenseNet-121 112² batch 16): the own GEMM's filter gradients take
 * 0.3–0.9× XNNPACK's route's time in both builds; its forward 1×1 conv 0.8× (relaxed) to ≈1× (plain) — and
 * its K-blocked sums are more exact, which is why the plain build is used there too.
 */
export type GemmRoute = 'gemm' | 'xnnpack';
export const GEMM_ROUTES: readonly GemmRoute[] = ['gemm', 'xnnpack'];

/** filterGrad: Conv2DBackpropFilter (1×1, and k×k stride 1); conv1x1: the forward Conv2D, 1×1 stride 1 unpadded. */
export type GemmKernel = 'filterGrad' | 'conv1x1';

const routes: Record<GemmKernel, GemmRoute> = { filterGrad: 'gemm', conv1x1: 'gemm' };

export function gemmRoute(kernel: GemmKernel): GemmRoute {
  return routes[kernel];
}

/** Switches one kernel's route (for measurement and tests); returns the previous one. */
export function setGemmRoute(kernel: GemmKernel, route: GemmRoute): GemmRoute {
  const previous = routes[kernel];
  routes[kernel] = route;
  return previous;
}
