/**
 * `efficient-densenet-tfjs/bench`: the memory and speed benchmarks behind `efficient-densenet bench` and
 * `max-batch`, training FLOPs, and the SVG line charts (vega, which the main entry never loads).
 */
export { runBenchmark, runBenchConfig, type BenchmarkOptions, type BenchConfig, type BenchReport, type BenchResult } from './benchmark.js';
export { findMaxBatch, type MaxBatchOptions, type MaxBatchResult } from './max-batch.js';
export { BENCH_MODES, type BenchMode } from './config.js';
export { forwardFlops, trainingStepFlops } from './flops.js';
export { explainOutOfMemory } from '../memory/out-of-memory-advice.js';
export { renderLineChartSvg, type LineChartOptions, type ChartSeries, type ChartPoint } from '../charts/line-chart.js';
