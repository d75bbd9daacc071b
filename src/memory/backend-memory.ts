/**
 * What the backend itself holds after a step, beyond tfjs's tensor accounting: the wasm heap (it only grows,
 * so after the step it is the step's peak), the process's peak resident memory on cpu, the process's GPU
 * memory from nvidia-smi on tensorflow (run with TF_FORCE_GPU_ALLOW_GROWTH=true), the high-water mark of
 * tfjs-webgpu's GPU buffer pool on webgpu (kernels' internal buffers and pooling slack included); null on meta.
 */
import * as tf from '@tensorflow/tfjs';
import { execFileSync } from 'node:child_process';
import { backendTraits } from '../backend/traits.js';
import { webgpuPoolPeakBytes } from '../backend/webgpu/pool.js';

interface WasmBackendInternals {
  wasm?: { HEAPU8?: Uint8Array };
}

export function backendPeakBytes(): number | null {
  switch (backendTraits().peakBytes) {
    case 'wasm-heap': {
      const heap = (tf.backend() as unknown as WasmBackendInternals).wasm?.HEAPU8;
      return heap ? heap.byteLength : null;
    }
    case 'process-rss':
      return process.resourceUsage().maxRSS * 1024;
    case 'nvidia-smi':
      return gpuMemoryOfThisProcess();
    case 'webgpu-pool':
      return webgpuPoolPeakBytes(tf.backend());
    case null:
      return null;
  }
}

function gpuMemoryOfThisProcess(): number | null {
  try {
    const out = execFileSync('nvidia-smi', ['--query-compute-apps=pid,used_memory', '--format=csv,noheader,nounits'], {
      encoding: 'utf8',
      timeout: 10_000,
      stdio: ['ignore', 'pipe', 'ignore'],
    });
    for (const line of out.split('\n')) {
      const [pid, mib] = line.split(',').map((s) => s.trim());
      if (Number(pid) === process.pid) return Number(mib) * 1024 * 1024;
    }
    return null;
  } catch {
    return null;
  }
}
