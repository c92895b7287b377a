// Inline SVG for the training report: line charts per epoch and a confusion matrix. Written by hand
// so the report is one self-contained file with no script, font or stylesheet to fetch.

export function escapeXml(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
}

export interface Series {
  name: string;
  color: string;
  dashed?: boolean;
  /** One value per epoch; null where there is none. */
  values: (number | null)[];
}

export interface LineChart {
  title: string;
  yLabel: string;
  series: Series[];
  /** Fixed range (accuracy: 0..1); otherwise from the data, starting at 0. */
  yRange?: [number, number];
}

const chart = { width: 460, height: 290, left: 56, right: 16, top: 50, bottom: 44 };

/** Round tick steps (1, 2 or 5 times a power of ten) giving about `count` ticks. */
function ticks(low: number, high: number, count: number): number[] {
  const raw = (high - low) / count;
  const power = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 5, 10].map((factor) => factor * power).find((candidate) => candidate >= raw) ?? raw;
  const values: number[] = [];
  for (let value = Math.ceil(low / step) * step; value <= high + step * 1e-9; value += step) values.push(Number(value.toPrecision(12)));
  return values;
}

function label(value: number): string {
  return Math.abs(value) >= 1000 || (value !== 0 && Math.abs(value) < 0.01) ? value.toExponential(1) : String(Number(value.toFixed(3)));
}

export function lineChartSvg(spec: LineChart): string {
  const epochs = Math.max(1, ...spec.series.map((series) => series.values.length));
  const finite = spec.series.flatMap((series) => series.values).filter((value): value is number => value !== null && Number.isFinite(value));
  const [low, high] = spec.yRange ?? [0, Math.max(1e-6, ...finite) * 1.05];
  const plotWidth = chart.width - chart.left - chart.right;
  const plotHeight = chart.height - chart.top - chart.bottom;
  const x = (epoch: number): number => chart.left + (epochs === 1 ? plotWidth / 2 : ((epoch - 1) / (epochs - 1)) * plotWidth);
  const y = (value: number): number => chart.top + plotHeight - ((Math.min(Math.max(value, low), high) - low) / (high - low)) * plotHeight;
  const parts: string[] = [];
  parts.push(`<text x="${chart.width / 2}" y="20" text-anchor="middle" font-size="15" font-weight="bold">${escapeXml(spec.title)}</text>`);
  for (const value of ticks(low, high, 5)) {
    parts.push(`<line x1="${chart.left}" x2="${chart.width - chart.right}" y1="${y(value).toFixed(1)}" y2="${y(value).toFixed(1)}" stroke="#ddd"/>`,
      `<text x="${chart.left - 6}" y="${(y(value) + 4).toFixed(1)}" text-anchor="end" font-size="11">${label(value)}</text>`);
  }
  const every = Math.ceil(epochs / 10);
  for (let epoch = 1; epoch <= epochs; epoch += 1) {
    const onStep = (epoch - 1) % every === 0;
    // The last epoch is labelled too, unless a step label sits right beside it.
    const last = epoch === epochs && (epochs - 1) % every >= Math.max(2, every / 2);
    if (!onStep && !last) continue;
    parts.push(`<text x="${x(epoch).toFixed(1)}" y="${chart.height - chart.bottom + 16}" text-anchor="middle" font-size="11">${epoch}</text>`);
  }
  parts.push(`<line x1="${chart.left}" x2="${chart.left}" y1="${chart.top}" y2="${chart.height - chart.bottom}" stroke="#333"/>`,
    `<line x1="${chart.left}" x2="${chart.width - chart.right}" y1="${chart.height - chart.bottom}" y2="${chart.height - chart.bottom}" stroke="#333"/>`,
    `<text x="${chart.left + plotWidth / 2}" y="${chart.height - 8}" text-anchor="middle" font-size="12">epoch</text>`,
    `<text transform="translate(14 ${chart.top + plotHeight / 2}) rotate(-90)" text-anchor="middle" font-size="12">${escapeXml(spec.yLabel)}</text>`);
  spec.series.forEach((series, index) => {
    const points = series.values.map((value, epoch) => (value === null || !Number.isFinite(value) ? null : [x(epoch + 1), y(value)]))
      .filter((point): point is number[] => point !== null);
    if (points.length === 0) return;
    const dash = series.dashed ? ' stroke-dasharray="6 4"' : '';
    parts.push(`<polyline fill="none" stroke="${series.color}" stroke-width="2"${dash} points="${points.map(([px, py]) => `${px.toFixed(1)},${py.toFixed(1)}`).join(' ')}"/>`);
    if (points.length <= 40) {
      for (const [px, py] of points) parts.push(`<circle cx="${px.toFixed(1)}" cy="${py.toFixed(1)}" r="2.5" fill="${series.color}"/>`);
    }
    // The legend sits above the plot, where it cannot hide a curve.
    const legendX = chart.left + index * 120;
    const legendY = 36;
    parts.push(`<line x1="${legendX}" x2="${legendX + 20}" y1="${legendY}" y2="${legendY}" stroke="${series.color}" stroke-width="2"${dash}/>`,
      `<text x="${legendX + 26}" y="${legendY + 4}" font-size="11">${escapeXml(series.name)}</text>`);
  });
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${chart.width}" height="${chart.height}" viewBox="0 0 ${chart.width} ${chart.height}" ` +
    `font-family="sans-serif" role="img" aria-label="${escapeXml(spec.title)}">${parts.join('')}</svg>`;
}

/** Rows are true classes, columns predictions; shade is the share of the row, so rare classes read as clearly as common ones. */
export function confusionSvg(classes: string[], confusion: number[][]): string {
  const count = classes.length;
  const cell = Math.max(12, Math.min(56, Math.floor(560 / count)));
  const longest = Math.max(...classes.map((name) => name.length));
  const fontSize = Math.min(12, Math.max(7, cell * 0.45));
  const labelSpace = Math.min(200, Math.ceil(longest * fontSize * 0.62) + 12);
  const left = labelSpace + 24;
  const top = labelSpace + 24;
  const size = cell * count;
  const parts: string[] = [];
  confusion.forEach((row, truth) => {
    const total = row.reduce((sum, value) => sum + value, 0);
    row.forEach((value, predicted) => {
      const share = total > 0 ? value / total : 0;
      const px = left + predicted * cell;
      const py = top + truth * cell;
      const fill = truth === predicted ? '37,99,235' : '220,38,38';
      parts.push(`<rect x="${px}" y="${py}" width="${cell}" height="${cell}" fill="rgba(${fill},${(0.08 + share * 0.87).toFixed(3)})" stroke="#fff">` +
        `<title>${escapeXml(`${classes[truth]} -> ${classes[predicted]}: ${value}`)}</title></rect>`);
      if (cell >= 22) {
        const color = share > 0.55 ? '#fff' : '#111';
        parts.push(`<text x="${px + cell / 2}" y="${py + cell / 2 + fontSize * 0.35}" text-anchor="middle" font-size="${fontSize}" fill="${color}">${value}</text>`);
      }
    });
  });
  classes.forEach((name, index) => {
    const center = index * cell + cell / 2;
    parts.push(`<text x="${left - 6}" y="${(top + center + fontSize * 0.35).toFixed(1)}" text-anchor="end" font-size="${fontSize}">${escapeXml(name)}</text>`,
      `<text transform="translate(${(left + center + fontSize * 0.35).toFixed(1)} ${top - 6}) rotate(-90)" font-size="${fontSize}">${escapeXml(name)}</text>`);
  });
  parts.push(`<text x="${left + size / 2}" y="14" text-anchor="middle" font-size="12">predicted</text>`,
    `<text transform="translate(14 ${top + size / 2}) rotate(-90)" text-anchor="middle" font-size="12">true class</text>`);
  const width = left + size + 8;
  const height = top + size + 8;
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" ` +
    `font-family="sans-serif" role="img" aria-label="confusion matrix">${parts.join('')}</svg>`;
}
