/**
 * A tiled matrix-product skeleton for WGSL, C[M, N] = Σ_k A(m, k)·B(k, n), where A and B are read through
 * per-kernel snippets (implicit GEMM: a convolution's gather is done while filling the tiles, never
 * materialized). Shape of the work: 32×32 output tiles, one 64-invocation workgroup each, every invocation
 * computing a 4×4 block in registers (vec4 rows) from 32-deep tiles of A and B in workgroup memory — the
 * layout of tfjs-backend-webgpu's own vec4 matMul, so the two run at the same speed per FLOP on any adapter.
 *
 * Why the operand snippets are split in three: integer division is costly on GPUs and, on a CPU adapter
 * (llvmpipe), scalarized per lane. Each invocation loads the same 16 rows (m or n) of its operand for the
 * whole K loop, so their index arithmetic runs once (`slot`), and the K index is decomposed once per tile
 * (`tile`); the per-element `load` is adds, compares and a read.
 */

export const TILE = 32;
const SLOTS = 16; // elements of A (and of B) each invocation loads per K tile
const WORKGROUP = 64;

export interface GemmOperand {
  /** Function-scope declarations of per-slot state, e.g. `var aR: array<i32, 16>;`. */
  decl: string;
  /** Statements filling slot `S` (a literal) from `idx`, the row (m for A, n for B) that slot loads. */
  slot: (s: number) => string;
  /** Statements run once per K tile, given `k` (this invocation's K index, possibly ≥ dimK). */
  tile: string;
  /** Statements setting `val` (an f32, zero) for slot `S` at `k`; run only when m/n and k are in range. */
  load: (s: number) => string;
  /**
   * Optional: statements setting `v` (a vec4, zero) for slots 4q…4q+3 at once, when those four rows are
   * contiguous in memory and the operand is bound as vec4 — one read instead of four on the adapter. Run
   * only when the group's first row and k are in range (the caller guarantees dimM/dimN % 4 == 0).
   */
  loadVec4?: (q: number) => string;
}

export interface GemmSource {
  a: GemmOperand;
  b: GemmOperand;
  /** Shared declarations (constants) put before main. */
  header?: string;
  /** The output is bound as vec4 (program.outputComponent 4; dimN % 4 == 0): rows are written whole. */
  vec4Output?: boolean;
}

/** The uniforms every GEMM program starts with; a kernel appends its own after them. */
export const GEMM_UNIFORMS = 'dimM : i32, dimN : i32, dimK : i32, ';

/** Workgroups: x over N tiles, y over M tiles. */
export function gemmDispatch(m: number, n: number): [number, number, number] {
  return [Math.ceil(n / TILE), Math.ceil(m / TILE), 1];
}
export const GEMM_WORKGROUP: [number, number, number] = [WORKGROUP, 1, 1];

function fill(op: GemmOperand, name: 'A' | 'B', dim: 'dimM' | 'dimN', origin: string): string {
  const lines: string[] = [];
  for (let q = 0; q < 4; q++) {
    for (let c = 0; c < 4; c++) {
      const s = q * 4 + c;
      lines.push(`{ let idx = ${origin} + (vg + ${2 * q}) * 4 + ${c}; ok${name}[${s}] = idx < uniforms.${dim}; ${op.slot(s)} }`);
    }
  }
  return lines.join('\n    ');
}

function load(op: GemmOperand, name: 'A' | 'B', tile: string): string {
  const lines: string[] = [];
  for (let q = 0; q < 4; q++) {
    if (op.loadVec4) {
      lines.push(`{ var v = vec4<f32>(0.0); if (kIn && ok${name}[${q * 4}]) { ${op.loadVec4(q)} } ${tile}[kl * 8 + vg + ${2 * q}] = v; }`);
      continue;
    }
    lines.push(`{ var v = vec4<f32>(0.0);`);
    for (let c = 0; c < 4; c++) {
      const s = q * 4 + c;
      lines.push(`  if (kIn && ok${name}[${s}]) { var val = 0.0; ${op.load(s)} v[${c}] = val; }`);
    }
    lines.push(`  ${tile}[kl * 8 + vg + ${2 * q}] = v; }`);
  }
  return lines.join('\n      ');
}

/** The WGSL `main` of a GEMM whose operands are read by `source`; the output is row-major [M, N]. */
export function gemmShader(source: GemmSource): string {
  const { a, b } = source;
  return `
  var<workgroup> tileA : array<vec4<f32>, ${(TILE * TILE) / 4}>;
  var<workgroup> tileB : array<vec4<f32>, ${(TILE * TILE) / 4}>;
  ${source.header ?? ''}

  fn main() {
    let tid = i32(localIndex);
    let tx = tid % 8;
    let ty = tid / 8;
    let kl = tid % ${TILE};
    let vg = tid / ${TILE};
    let m0 = i32(workgroupId.y) * ${TILE};
    let n0 = i32(workgroupId.x) * ${TILE};
    var okA : array<bool, ${SLOTS}>;
    var okB : array<bool, ${SLOTS}>;
    ${a.decl}
    ${b.decl}
    ${fill(a, 'A', 'dimM', 'm0')}
    ${fill(b, 'B', 'dimN', 'n0')}
    var acc : array<vec4<f32>, 4>;
    for (var k0 = 0; k0 < uniforms.dimK; k0 = k0 + ${TILE}) {
      let k = k0 + kl;
      let kIn = k < uniforms.dimK;
      ${a.tile}
      ${b.tile}
      ${load(a, 'A', 'tileA')}
      ${load(b, 'B', 'tileB')}
      workgroupBarrier();
      for (var kk = 0; kk < ${TILE}; kk = kk + 1) {
        let av = tileA[kk * 8 + ty];
        let bv = tileB[kk * 8 + tx];
        acc[0] = fma(vec4<f32>(av.x), bv, acc[0]);
        acc[1] = fma(vec4<f32>(av.y), bv, acc[1]);
        acc[2] = fma(vec4<f32>(av.z), bv, acc[2]);
        acc[3] = fma(vec4<f32>(av.w), bv, acc[3]);
      }
      workgroupBarrier();
    }
    for (var i = 0; i < 4; i = i + 1) {
      let m = m0 + ty * 4 + i;
      if (m >= uniforms.dimM) { continue; }
      ${source.vec4Output ? `let n = n0 + tx * 4;
      if (n < uniforms.dimN) { result[(m * uniforms.dimN + n) / 4] = acc[i]; }` : `for (var c = 0; c < 4; c = c + 1) {
        let n = n0 + tx * 4 + c;
        if (n < uniforms.dimN) { result[m * uniforms.dimN + n] = acc[i][c]; }
      }`}
    }
  }
  `;
}
