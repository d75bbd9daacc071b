/**
 * Kernels for tfjs's `cpu` backend, laid out as the wasm ones are: one file per kernel under kernels/, shared
 * helpers in internals.ts, the list and the register functions in register.ts.
 *
 * The cpu backend is the project's reference (tests compare every other backend with it) and the fallback
 * when wasm cannot load, so it should be as exact as float32 allows: its convolutions and matrix products
 * form each float32 product exactly in a double, sum in doubles and round once. That is what removes
 * tfjs's excess error against a float64 reference (the README's parity paragraph), and these loops are
 * also faster than tfjs-backend-cpu's own backward convolutions.
 */
export { registerCpuExactKernels, unregisterCpuExactKernels, CPU_EXACT_KERNELS } from './register.js';
