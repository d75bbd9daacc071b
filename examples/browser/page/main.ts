/**
 * The demo page: pick a model, a memory mode and a backend, train on a synthetic task drawn in the page (or
 * on dropped images), watch loss and accuracy, compare the modes' step memory, download the model.
 * Everything the page finds is also on `window.demoState`, which the browser test reads.
 */
import type * as tf from '@tensorflow/tfjs';
import type { Logger } from 'efficient-densenet-tfjs';
import { drawChart, type Series } from './plot.js';
import { createRng, drawSynthetic, droppedImages, imageData, loadDropped, split, type ImageSet } from './task.js';
import {
  applyMode,
  downloadSafetensors,
  downloadTfjs,
  measureModes,
  MEMORY_MODES,
  MODELS,
  startBackend,
  train,
  type MemoryMode,
  type ModeMemory,
  type ModelChoice,
} from './trainer.js';

/** What the page has found, for people (the page) and for the browser test (this object). */
interface DemoState {
  status: 'idle' | 'running' | 'done' | 'error';
  error?: string;
  backend?: string;
  model?: ModelChoice;
  mode?: MemoryMode;
  memory: Partial<Record<MemoryMode, ModeMemory>>;
  steps: number;
  valAccuracy: number;
  imagesPerSecond: number;
  seconds: number;
  stoppedBy?: string;
  log: string[];
}

const state: DemoState = { status: 'idle', memory: {}, steps: 0, valAccuracy: 0, imagesPerSecond: 0, seconds: 0, log: [] };
(window as unknown as { demoState: DemoState }).demoState = state;

const $ = <T extends HTMLElement>(id: string) => document.getElementById(id) as T;
const modelSelect = $<HTMLSelectElement>('model');
const modeSelect = $<HTMLSelectElement>('mode');
const backendSelect = $<HTMLSelectElement>('backend');
const trainButton = $<HTMLButtonElement>('train');
const stopButton = $<HTMLButtonElement>('stop');
const tfjsButton = $<HTMLButtonElement>('download-tfjs');
const safetensorsButton = $<HTMLButtonElement>('download-safetensors');

for (const [value, { label }] of Object.entries(MODELS)) modelSelect.add(new Option(label, value));
for (const mode of MEMORY_MODES) {
  modeSelect.add(new Option(mode, mode, mode === 'layer', mode === 'layer'));
  const label = document.createElement('label');
  label.innerHTML = `<input id="measure-${mode}" type="checkbox" checked> ${mode}`;
  $('measure-modes').append(label);
}

// The query string presets the controls (?backend=wasm&model=small&mode=layer&batch=8&steps=100&target=0.9,
// measure-block=0 to leave a mode out of the measuring): handy for links and for the browser test.
for (const [key, value] of new URLSearchParams(location.search)) {
  const control = document.getElementById(key);
  if (control instanceof HTMLInputElement && control.type === 'checkbox') control.checked = value !== '0' && value !== 'false';
  else if (control instanceof HTMLSelectElement || control instanceof HTMLInputElement) control.value = value;
}

const logger: Logger = {
  info: (message) => log(message),
  warn: (message) => log(`warning: ${message}`),
};

function log(message: string): void {
  state.log.push(message);
  const box = $('log');
  box.textContent += `${message}\n`;
  box.scrollTop = box.scrollHeight;
}

function setStatus(text: string): void {
  $('status').textContent = text;
}

const mib = (bytes: number) => `${(bytes / 2 ** 20).toFixed(bytes < 10 * 2 ** 20 ? 2 : 1)} MiB`;

function renderMemory(): void {
  const body = $('memory').querySelector('tbody')!;
  const peaks = MEMORY_MODES.map((m) => state.memory[m]?.stepPeakBytes ?? 0);
  const max = Math.max(1, ...peaks);
  body.replaceChildren(
    ...MEMORY_MODES.map((mode) => {
      const m = state.memory[mode];
      const row = document.createElement('tr');
      const bar = m ? `<span class="bar" style="width:${Math.max(2, (120 * m.stepPeakBytes) / max)}px"></span>` : '';
      row.innerHTML = m
        ? `<td>${mode}</td><td>${mib(m.stepPeakBytes)}${bar}</td><td>${mib(m.engineStepPeakBytes)}</td>`
        : `<td>${mode}</td><td colspan="2" style="color:#999">not measured</td>`;
      return row;
    }),
  );
}

const history = { loss: [] as Array<[number, number]>, batchAccuracy: [] as Array<[number, number]>, valAccuracy: [] as Array<[number, number]> };

/** A moving average, so the batch-to-batch noise does not hide the trend. */
function smooth(points: Array<[number, number]>, window = 10): Array<[number, number]> {
  return points.map(([x], i) => {
    const part = points.slice(Math.max(0, i - window + 1), i + 1);
    return [x, part.reduce((sum, [, y]) => sum + y, 0) / part.length];
  });
}

function renderCharts(): void {
  const loss: Series[] = [
    { name: 'batch loss', color: '#bbb', points: history.loss },
    { name: 'mean of 10', color: '#e45756', points: smooth(history.loss) },
  ];
  drawChart($<HTMLElement>('loss-chart') as unknown as SVGSVGElement, 'Training loss', 'step', loss);
  const accuracy: Series[] = [
    { name: 'batch (mean of 10)', color: '#f58518', points: smooth(history.batchAccuracy) },
    { name: 'validation', color: '#4c78a8', points: history.valAccuracy, dots: true },
  ];
  drawChart($<HTMLElement>('acc-chart') as unknown as SVGSVGElement, 'Accuracy', 'step', accuracy, 1);
}

function renderSamples(set: ImageSet): void {
  const box = $('samples');
  box.replaceChildren();
  for (let i = 0; i < Math.min(14, set.labels.length); i++) {
    const figure = document.createElement('figure');
    const canvas = document.createElement('canvas');
    canvas.width = canvas.height = set.size;
    canvas.getContext('2d')!.putImageData(imageData(set, i), 0, 0);
    const caption = document.createElement('figcaption');
    caption.textContent = set.classNames[set.labels[i]];
    figure.append(canvas, caption);
    box.append(figure);
  }
}

let dropped: { train: ImageSet; val: ImageSet } | undefined;
let droppedFiles: Awaited<ReturnType<typeof droppedImages>> | undefined;
let trained: tf.LayersModel | undefined;
let stopRequested = false;

const drop = $('drop');
drop.addEventListener('dragover', (event) => {
  event.preventDefault();
  drop.classList.add('over');
});
drop.addEventListener('dragleave', () => drop.classList.remove('over'));
drop.addEventListener('drop', async (event) => {
  event.preventDefault();
  drop.classList.remove('over');
  try {
    droppedFiles = await droppedImages(event.dataTransfer!.items);
    const classes = [...new Set(droppedFiles.map((f) => f.className))];
    $('data-choice').textContent = `${droppedFiles.length} dropped images, ${classes.length} classes (${classes.sort().join(', ')})`;
    dropped = undefined; // decoded at the model's size when training starts
  } catch (error) {
    log(`drop: ${error instanceof Error ? error.message : String(error)}`);
  }
});

function numberOf(id: string): number {
  return Number($<HTMLInputElement>(id).value);
}

async function run(): Promise<void> {
  const choice = modelSelect.value as ModelChoice;
  const mode = modeSelect.value as MemoryMode;
  const batchSize = numberOf('batch');
  Object.assign(state, { status: 'running', error: undefined, model: choice, mode, memory: {}, steps: 0, valAccuracy: 0, imagesPerSecond: 0, seconds: 0 });
  history.loss = [];
  history.batchAccuracy = [];
  history.valAccuracy = [];
  renderMemory();
  renderCharts();
  trained?.dispose();
  trained = undefined;
  stopRequested = false;
  trainButton.disabled = true;
  stopButton.disabled = false;
  tfjsButton.disabled = safetensorsButton.disabled = true;
  try {
    setStatus('Starting the backend…');
    state.backend = await startBackend(backendSelect.value, logger);
    $('stat-backend').textContent = state.backend;
    const size = MODELS[choice].imageSize;
    if (droppedFiles && !dropped) dropped = split(await loadDropped(droppedFiles, size), createRng(3));
    if (dropped && dropped.train.size !== size) dropped = split(await loadDropped(droppedFiles!, size), createRng(3));
    renderSamples(dropped?.val ?? drawSynthetic(16, size, createRng(99)));
    const numClasses = dropped?.val.classNames.length ?? 4;
    const toMeasure = MEMORY_MODES.filter((m) => $<HTMLInputElement>(`measure-${m}`).checked);
    if (toMeasure.length > 0) {
      setStatus(`Measuring one training step per memory mode (${MODELS[choice].label}, batch ${batchSize})…`);
      $('memory-caption').textContent = `One training step of the ${MODELS[choice].label}, batch ${batchSize}, on ${state.backend}: the peak above what the step starts with (weights, optimizer state, batch).`;
      await measureModes(choice, toMeasure, batchSize, numClasses, (m, memory) => {
        state.memory[m] = memory;
        renderMemory();
        log(`${m}: step peak ${mib(memory.stepPeakBytes)} (tf.profile ${mib(memory.engineStepPeakBytes)}), ${memory.msPerStep.toFixed(0)} ms/step`);
      });
    }
    setStatus(`Training ${MODELS[choice].label}, memory mode ${mode}, on ${state.backend}…`);
    const result = await train({
      choice,
      mode,
      batchSize,
      steps: numberOf('steps'),
      learningRate: numberOf('lr'),
      target: numberOf('target'),
      evalEvery: 10,
      images: dropped,
      shouldStop: () => stopRequested,
      onStep: (p) => {
        history.loss.push([p.step, p.loss]);
        history.batchAccuracy.push([p.step, p.batchAccuracy]);
        Object.assign(state, { steps: p.step, imagesPerSecond: p.imagesPerSecond, seconds: p.seconds });
        $('stat-step').textContent = String(p.step);
        $('stat-ips').textContent = p.imagesPerSecond.toFixed(1);
        if (p.step % 2 === 0) renderCharts();
      },
      onEval: (p) => {
        history.valAccuracy.push([p.step, p.valAccuracy]);
        state.valAccuracy = p.valAccuracy;
        $('stat-acc').textContent = `${(100 * p.valAccuracy).toFixed(1)}%`;
        renderCharts();
      },
    });
    trained = result.model;
    Object.assign(state, { steps: result.steps, valAccuracy: result.valAccuracy, imagesPerSecond: result.imagesPerSecond, seconds: result.seconds, stoppedBy: result.stoppedBy });
    renderCharts();
    const why = result.stoppedBy === 'target' ? 'reached the target accuracy' : result.stoppedBy === 'user' ? 'stopped' : 'all steps done';
    setStatus(`Done (${why}): ${(100 * result.valAccuracy).toFixed(1)}% validation accuracy after ${result.steps} steps, ${result.seconds.toFixed(0)} s, on ${state.backend}.`);
    log(`trained ${result.steps} steps in ${result.seconds.toFixed(1)} s: validation accuracy ${(100 * result.valAccuracy).toFixed(1)}%, ${result.imagesPerSecond.toFixed(1)} images/s`);
    tfjsButton.disabled = safetensorsButton.disabled = false;
    state.status = 'done';
  } catch (error) {
    state.error = error instanceof Error ? error.message : String(error);
    state.status = 'error';
    setStatus(`Error: ${state.error}`);
    log(`error: ${state.error}`);
  } finally {
    trainButton.disabled = false;
    stopButton.disabled = true;
  }
}

trainButton.addEventListener('click', () => void run());
stopButton.addEventListener('click', () => (stopRequested = true));
tfjsButton.addEventListener('click', () => trained && void downloadTfjs(trained));
safetensorsButton.addEventListener('click', () => void (trained && downloadSafetensors(trained)));
modeSelect.addEventListener('change', () => {
  // Switching the mode of a trained model changes how its next steps use memory, never its weights.
  if (trained) applyMode(trained, modeSelect.value as MemoryMode);
});
renderMemory();
renderCharts();
renderSamples(drawSynthetic(16, MODELS[modelSelect.value as ModelChoice].imageSize, createRng(99)));
