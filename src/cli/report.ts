// `train --report out.html`: one self-contained HTML page with the loss and accuracy curves per epoch
// and the confusion matrix. Opens from disk in any browser; nothing is fetched.
import fs from 'node:fs';
import path from 'node:path';
import { VideoRNNError } from '../errors';
import type { EvalReport } from '../metrics';
import type { ModelConfig } from '../options';
import type { TrainReport } from '../training';
import { confusionSvg, escapeXml, lineChartSvg } from './charts';
import { fixed, seconds } from './format';

export interface ReportContent {
  /** What ran, e.g. "train" or "fine-tune". */
  command: string;
  dataset: string;
  model: string;
  config: ModelConfig;
  settings: Record<string, string | number | boolean>;
  training: TrainReport;
  /** The set the confusion matrix was measured on, in words. */
  evaluationName: string;
  evaluation: EvalReport;
}

const colors = { train: '#2563eb', validation: '#ea580c' };

function definitionRows(entries: [string, string][]): string {
  return entries.map(([name, value]) => `<tr><th>${escapeXml(name)}</th><td>${escapeXml(value)}</td></tr>`).join('');
}

function perClassRows(classes: string[], evaluation: EvalReport): string {
  return classes.map((label) => {
    const entry = evaluation.perClass[label];
    return `<tr><td>${escapeXml(label)}</td><td class="number">${fixed(entry.accuracy)}</td><td class="number">${entry.count}</td></tr>`;
  }).join('');
}

export function renderReport(content: ReportContent): string {
  const { training, evaluation, config } = content;
  const validation = training.epochs.some((epoch) => epoch.validation !== undefined);
  const series = (pick: 'loss' | 'accuracy') => [
    { name: 'training', color: colors.train, values: training.epochs.map((epoch) => epoch[pick]) },
    ...(validation ? [{ name: 'validation', color: colors.validation, dashed: true,
      values: training.epochs.map((epoch) => epoch.validation?.[pick] ?? null) }] : []),
  ];
  const summary: [string, string][] = [
    ['dataset', content.dataset],
    ['model file', content.model],
    ['classes', `${config.classes.length}`],
    ['epochs', `${training.epochs.length} in ${seconds(training.seconds)} (${training.samplesPerSecond.toFixed(1)} clips/s)`],
    ['final training loss / accuracy', `${fixed(training.loss, 4)} / ${fixed(training.accuracy)}`],
    [`accuracy on the ${content.evaluationName}`, `${fixed(evaluation.accuracy)} (mean class accuracy ${fixed(evaluation.meanClassAccuracy)})`],
  ];
  const settings: [string, string][] = [
    ['hidden size', `${config.hiddenSize}${config.bidirectional ? ' per direction, bidirectional' : ''}`],
    ['frame size', `${config.frameSize} px`],
    ['trainable backbone layers', String(config.trainableBackboneLayers)],
    ...Object.entries(content.settings).map(([name, value]): [string, string] => [name, String(value)]),
  ];
  return `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>video-rnn ${escapeXml(content.command)} report</title>
<style>
  body { font-family: sans-serif; margin: 24px; color: #111; max-width: 1040px; }
  h1 { font-size: 22px; margin-bottom: 4px; }
  h2 { font-size: 17px; margin-top: 28px; }
  .charts { display: flex; flex-wrap: wrap; gap: 16px; }
  table { border-collapse: collapse; font-size: 13px; }
  th, td { text-align: left; padding: 3px 12px 3px 0; vertical-align: top; }
  th { font-weight: 600; color: #444; }
  td.number { text-align: right; font-variant-numeric: tabular-nums; }
  .muted { color: #666; font-size: 13px; }
  .side { display: flex; flex-wrap: wrap; gap: 32px; align-items: flex-start; }
</style>
</head>
<body>
<h1>video-rnn ${escapeXml(content.command)} report</h1>
<p class="muted">Written ${escapeXml(new Date().toISOString())}</p>
<table>${definitionRows(summary)}</table>
<h2>Loss and accuracy per epoch</h2>
<div class="charts">
${lineChartSvg({ title: 'Loss', yLabel: 'cross-entropy', series: series('loss') })}
${lineChartSvg({ title: 'Accuracy', yLabel: 'accuracy', yRange: [0, 1], series: series('accuracy') })}
</div>
<h2>Confusion matrix: ${escapeXml(content.evaluationName)} (${evaluation.count} clips)</h2>
<div class="side">
${confusionSvg(config.classes, evaluation.confusion)}
<table><tr><th>class</th><th>accuracy</th><th>clips</th></tr>${perClassRows(config.classes, evaluation)}</table>
</div>
<h2>Settings</h2>
<table>${definitionRows(settings)}</table>
</body>
</html>
`;
}

/** Written beside its final name and renamed, like checkpoints, so a reader never sees half a page. */
export async function writeReport(file: string, content: ReportContent): Promise<void> {
  const partial = path.join(path.dirname(file), `.${path.basename(file)}.partial`);
  try {
    await fs.promises.writeFile(partial, renderReport(content));
    await fs.promises.rename(partial, file);
  } catch (error) {
    await fs.promises.rm(partial, { force: true }).catch(() => undefined);
    throw new VideoRNNError('E_IO', `Cannot write the report ${file} (${(error as NodeJS.ErrnoException).code ?? 'error'})`, { cause: error });
  }
}
