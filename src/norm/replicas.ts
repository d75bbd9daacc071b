/**
 * Synchronized batch norm across data-parallel replicas. When a training step's batch is split over several
 * replicas of a model (worker threads, each with its own tfjs), every training-mode BN must still normalise
 * with the statistics of the whole batch, and its backward must use the whole batch's Σdy and Σdy·(x − μ);
 * otherwise N workers would train another function than one process with the whole batch.
 *
 * All BN reductions pass through channel-sums.ts, which asks the group installed here (if any) to gather
 * each replica's per-channel partial sums. A replica process installs its group once; with none installed
 * (the usual single-process run) nothing changes.
 */

/** The replicas of one data-parallel step, as seen from one of them. */
export interface ReplicaGroup {
  /**
   * Contributes `values` and returns the function that collects every participating replica's, in rank order
   * (this replica's own included), blocking until all have contributed. Between the two a replica may do work
   * that needs no one else's values (a split-phase barrier: a replica that arrives early computes instead of
   * waiting). Every replica receives the same arrays, so folding them in order gives the same bits
   * everywhere. Every replica must make the same sequence of calls with arrays of the same length, and
   * collect each gather before starting the next.
   */
  startAllGather(values: Float64Array): () => Float64Array[];
}

let installed: ReplicaGroup | null = null;

/** Installs (or, with null, removes) the group that training-mode batch norms synchronize over. */
export function setReplicaGroup(group: ReplicaGroup | null): void {
  installed = group;
}

/** The installed group, or null in a single-process run. */
export function replicaGroup(): ReplicaGroup | null {
  return installed;
}
