// Plain-text rendering of results for people; `--json` output bypasses all of this.
import type { EvalReport } from '../metrics';
import type { Prediction } from '../model';
import type { TrainReport } from '../training';

export function fixed(value: number, digits = 3): string {
  return Number.isFinite(value) ? value.toFixed(digits) : String(value);
}

export function seconds(value: number): string {
  if (value < 60) return `${value.toFixed(1)} s`;
  const minutes = Math.floor(value / 60);
  return `${minutes} min ${Math.round(value - minutes * 60)} s`;
}

export function bytes(value: number): string {
  const units = ['B', 'KB', 'MB', 'GB'];
  let size = value;
  let unit = 0;
  while (size >= 1024 && unit < units.length - 1) {
    size /= 1024;
    unit += 1;
  }
  return `${unit === 0 ? size : size.toFixed(1)} ${units[unit]}`;
}

/** Columns padded to their widest cell; the first column left-aligned, the others right-aligned. */
export function table(rows: string[][], indent = '  '): string {
  const widths = rows[0].map((_, column) => Math.max(...rows.map((row) => (row[column] ?? '').length)));
  return rows.map((row) => indent + row.map((cell, column) =>
    (column === 0 ? cell.padEnd(widths[column]) : cell.padStart(widths[column]))).join('  ').trimEnd()).join('\n');
}

export function confusionTable(classes: string[], confusion: number[][]): string {
  const header = ['true \\ predicted', ...classes];
  const rows = confusion.map((row, index) => [classes[index], ...row.map(String)]);
  return table([header, ...rows]);
}

export function evaluationText(report: EvalReport, classes: string[]): string {
  const correct = report.confusion.reduce((sum, row, index) => sum + row[index], 0);
  const lines = [
    `accuracy             ${fixed(report.accuracy)}  (${correct} of ${report.count} clips)`,
    `mean class accuracy  ${fixed(report.meanClassAccuracy)}`,
  ];
  if (report.top5 !== undefined) lines.push(`top-5 accuracy       ${fixed(report.top5)}`);
  lines.push(`loss                 ${fixed(report.loss, 4)}`, '', 'per class:');
  lines.push(table([['class', 'accuracy', 'clips'],
    ...classes.map((label) => [label, fixed(report.perClass[label].accuracy), String(report.perClass[label].count)])]));
  lines.push('', 'confusion matrix (rows: true class, columns: predicted):', confusionTable(classes, report.confusion));
  return lines.join('\n');
}

export function trainingText(report: TrainReport): string {
  const last = report.epochs[report.epochs.length - 1];
  const parts = [`trained ${report.epochs.length} epochs in ${seconds(report.seconds)}`,
    `loss ${fixed(last.loss, 4)}`, `accuracy ${fixed(last.accuracy)}`];
  if (last.validation) parts.push(`validation loss ${fixed(last.validation.loss, 4)}`, `validation accuracy ${fixed(last.validation.accuracy)}`);
  return parts.join(', ');
}

export function predictionText(name: string, prediction: Prediction): string {
  const others = prediction.topK.slice(1).map((entry) => `${entry.label} ${fixed(entry.score)}`);
  return `${name}: ${prediction.label} ${fixed(prediction.score)}${others.length > 0 ? `  (${others.join(', ')})` : ''}`;
}

/** One JSON document on stdout. Non-finite numbers (a NaN loss) become null, as JSON has no NaN. */
export function printJson(value: unknown): void {
  process.stdout.write(JSON.stringify(value, (_, item) => (item instanceof Float32Array ? Array.from(item) : item), 2) + '\n');
}
