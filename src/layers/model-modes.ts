/**
 * A built model's memory modes: the one verb that switches them (`setMemoryMode`) and the one that reads them.
 *
 * A dense block's mode also applies to the layers that read or write its full-resolution tensors: the stem
 * with block 1, each transition with the block before it, the final norm with the last block. So a per-block
 * plan (planMemory's) and a single mode are the same call.
 */
import * as tf from '@tensorflow/tfjs';
import { UsageError } from '../util/errors.js';
import { validateMemoryMode } from './config.js';
import { DenseBlock } from './dense-block.js';
import { FinalNorm } from './head.js';
import type { MemoryMode } from './memory-modes.js';
import { MemoryModeLayer } from './memory-mode-layer.js';
import { Stem } from './stem.js';
import { Transition } from './transition.js';

/** The DenseNet layers of a model, grouped by dense block. */
export interface DenseNetParts {
  stem?: Stem;
  blocks: DenseBlock[];
  transitions: Transition[];
  head?: FinalNorm;
}

/** The DenseNet layers of a model built by this library; `caller` names who asks in the error. */
export function partsOf(model: tf.LayersModel, caller = 'setMemoryMode'): DenseNetParts {
  const blocks = model.layers.filter((l): l is DenseBlock => l instanceof DenseBlock);
  if (blocks.length === 0) throw new UsageError(`${caller}: model '${model.name}' has no DenseBlock layers; only DenseNets built by this library have memory modes`);
  return {
    stem: model.layers.find((l): l is Stem => l instanceof Stem),
    blocks,
    transitions: model.layers.filter((l): l is Transition => l instanceof Transition),
    head: model.layers.find((l): l is FinalNorm => l instanceof FinalNorm),
  };
}

/**
 * Switches a built DenseNet's memory mode in place — weights, running statistics and optimizer state are
 * untouched: one mode for the whole model, or one per dense block (as `planMemory` gives). Accepts the
 * aliases (`efficient`). Returns how many layers were switched.
 */
export function setMemoryMode(model: tf.LayersModel, mode: MemoryMode | readonly MemoryMode[]): number {
  if (!(model instanceof tf.LayersModel)) throw new UsageError('setMemoryMode: model must be a tf.LayersModel');
  const parts = partsOf(model);
  const modes = typeof mode === 'string' ? parts.blocks.map(() => mode) : mode;
  if (!Array.isArray(modes) || modes.length !== parts.blocks.length) {
    throw new UsageError(`setMemoryMode: give one mode, or one per dense block (${parts.blocks.length}); got ${JSON.stringify(mode)}`);
  }
  const resolved = modes.map((m, i) => validateMemoryMode(m, typeof mode === 'string' ? 'setMemoryMode: mode' : `setMemoryMode: mode of block ${i + 1}`));
  const switched: MemoryModeLayer[] = [];
  const set = (layer: MemoryModeLayer | undefined, m: MemoryMode) => {
    if (!layer) return;
    layer.setMemoryMode(m);
    switched.push(layer);
  };
  parts.blocks.forEach((block, i) => {
    set(block, resolved[i]!);
    if (i < parts.transitions.length) set(parts.transitions[i], resolved[i]!);
  });
  set(parts.stem, resolved[0]!);
  set(parts.head, resolved[resolved.length - 1]!);
  return switched.length;
}

/** The memory mode of a model's DenseNet layers; mixed modes, as a per-block plan gives, are joined with '+'. */
export function memoryModeOfModel(model: tf.LayersModel): string {
  const modes = new Set(model.layers.filter((l): l is MemoryModeLayer => l instanceof MemoryModeLayer).map((l) => l.memoryMode));
  if (modes.size === 0) throw new Error(`model '${model.name}' has no DenseNet layers`);
  return [...modes].join('+');
}
