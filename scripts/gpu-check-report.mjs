// The report of scripts/gpu-check.sh: gathers what it left in OUT_DIR/raw (doctor's JSON, one bench JSON per
// webgpu configuration, PyTorch's JSON lines) into OUT_DIR/gpu-check.json and a markdown table,
// OUT_DIR/gpu-check.md. Plain JavaScript for the carried Node alone (no tsx, no build).
//
// Usage: node scripts/gpu-check-report.mjs OUT_DIR SETTINGS_JSON
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

const [outDir, settingsJson] = process.argv.slice(2);
const settings = JSON.parse(settingsJson ?? '{}');
const raw = (name) => join(outDir, 'raw', name);
const readJson = (file) => {
  try {
    return JSON.parse(readFileSync(file, 'utf8'));
  } catch {
    return null;
  }
};
const jsonLines = (file) =>
  existsSync(file)
    ? readFileSync(file, 'utf8').split('\n').filter((line) => line.trim().startsWith('{')).flatMap((line) => {
        try {
          return [JSON.parse(line)];
        } catch {
          return [];
        }
      })
    : [];
/** The last meaningful line of a failed run's stderr (Dawn's "Warning:" lines left out). */
const lastError = (file) => {
  if (!file || !existsSync(join(outDir, file))) return undefined;
  const lines = readFileSync(join(outDir, file), 'utf8').split('\n').map((l) => l.trim()).filter((l) => l && !/^warning:/i.test(l));
  return lines.at(-1)?.slice(0, 400);
};

const doctor = readJson(raw('doctor.json'));
const webgpuDoctor = doctor?.backends?.find((b) => b.backend === 'webgpu') ?? null;
const webgpu = jsonLines(raw('records.jsonl')).map((record) => {
  const bench = record.file ? readJson(join(outDir, record.file)) : null;
  const result = bench?.results?.[0] ?? null;
  const tensorPeakBytes = result?.peakBytes ?? null;
  const ratio = result?.backendPeakBytes != null && tensorPeakBytes ? result.backendPeakBytes / tensorPeakBytes : null;
  const error = record.status === 'ok' ? undefined : result?.error ?? (record.status === 'timeout' ? `no result within its time limit` : lastError(record.stderr));
  return { ...record, ...(error ? { error } : {}), result, backendOverTensorPeak: ratio };
});
const pytorch = jsonLines(raw('pytorch.jsonl'));
const report = {
  ...settings,
  date: new Date().toISOString(),
  adapter: webgpuDoctor?.facts?.name ?? null,
  doctor,
  webgpu,
  pytorch,
};
writeFileSync(join(outDir, 'gpu-check.json'), JSON.stringify(report, null, 2) + '\n');

const mib = (bytes) => (bytes == null ? '—' : (bytes / 2 ** 20).toFixed(0));
const num = (value, digits) => (value == null ? '—' : value.toFixed(digits));
const lines = [
  `# GPU check: ${settings.model} ${settings.imageSize}², ${settings.steps} timed steps, ${settings.classes} classes`,
  '',
  `- ${report.date}; Node ${doctor?.node ?? '?'}; command line from ${settings.cli}; ${settings.elapsedSeconds} s of a ${settings.budgetSeconds} s budget`,
  `- webgpu: ${webgpuDoctor ? `${webgpuDoctor.available ? 'available' : 'NOT available'}: ${webgpuDoctor.detail}` : 'doctor gave no report'}`,
  `- PyTorch CUDA anchor: ${settings.pytorchStatus}`,
  '',
  '## webgpu (one process per configuration)',
  '',
  'Tensor peak = baseline (weights, optimizer state, batch) + the step\'s peak of distinct tensor buffers; backend peak = the most',
  'GPU buffer bytes tfjs-webgpu held (`backendPeakBytes`).',
  '',
  '| batch | mode | status | baseline MiB | step peak MiB | tensor peak MiB | backend peak MiB | backend / tensor | ms/step | images/s |',
  '|---:|---|---|---:|---:|---:|---:|---:|---:|---:|',
  ...webgpu.map((w) => {
    const r = w.result;
    const status = w.status === 'ok' ? 'ok' : `${w.status}${w.error ? `: ${w.error.split('\n')[0].slice(0, 80)}` : w.reason ? `: ${w.reason}` : ''}`;
    return `| ${w.batch} | ${w.mode} | ${status.replace(/\|/g, '/')} | ${mib(r?.baselineBytes)} | ${mib(r?.stepPeakBytes)} | ${mib(r?.peakBytes)} | ${mib(r?.backendPeakBytes)} | ${num(w.backendOverTensorPeak, 3)} | ${num(r?.msPerStep, 0)} | ${num(r?.imagesPerSecond, 1)} |`;
  }),
  '',
  '## PyTorch CUDA anchor (python/pytorch_cuda_memory.py; efficient = `memory_efficient=True`)',
  '',
  ...(pytorch.length === 0
    ? ['not run (see above)']
    : [
        '| batch | mode | baseline MiB | step peak MiB | peak MiB | ms/step | note |',
        '|---:|---|---:|---:|---:|---:|---|',
        ...pytorch.map((p) => `| ${p.batch} | ${p.mode} | ${mib(p.baselineBytes)} | ${mib(p.stepPeakBytes)} | ${mib(p.peakBytes)} | ${num(p.msPerStep, 1)} | ${p.error ?? p.device ?? ''} |`),
      ]),
  '',
];
writeFileSync(join(outDir, 'gpu-check.md'), lines.join('\n'));
process.stdout.write(lines.join('\n'));
