// Classification metrics from per-clip probabilities, as EvalReport gives them.

export interface EvalReport {
  count: number;
  loss: number;
  accuracy: number;
  top5?: number;
  meanClassAccuracy: number;
  confusion: number[][]; // confusion[true][predicted]
  perClass: Record<string, { accuracy: number; count: number }>;
}

/** Indices of the k largest values, largest first; ties keep the lower index first. */
export function topIndices(values: ArrayLike<number>, k: number): number[] {
  const order = Array.from({ length: values.length }, (_, index) => index);
  order.sort((a, b) => values[b] - values[a] || a - b);
  return order.slice(0, k);
}

export class MetricsAccumulator {
  private readonly confusion: number[][];
  private lossSum = 0;
  private count = 0;
  private top5Hits = 0;

  constructor(private readonly classes: readonly string[]) {
    this.confusion = classes.map(() => new Array<number>(classes.length).fill(0));
  }

  /** probabilities: [labels.length, classes] row-major; batchLoss: the mean loss over the batch. */
  add(probabilities: Float32Array, labels: readonly number[], batchLoss: number): void {
    const classes = this.classes.length;
    labels.forEach((label, row) => {
      const scores = probabilities.subarray(row * classes, (row + 1) * classes);
      const ranked = topIndices(scores, Math.min(5, classes));
      this.confusion[label][ranked[0]] += 1;
      if (ranked.includes(label)) this.top5Hits += 1;
    });
    this.lossSum += batchLoss * labels.length;
    this.count += labels.length;
  }

  /** Everything accumulated, as numbers that can be summed across processes. */
  toVector(): number[] {
    return [this.lossSum, this.count, this.top5Hits, ...this.confusion.flat()];
  }

  /** Replaces the accumulated state with a (summed) vector from toVector(). */
  loadVector(vector: readonly number[]): void {
    [this.lossSum, this.count, this.top5Hits] = vector;
    const classes = this.classes.length;
    this.confusion.forEach((row, index) => row.splice(0, classes, ...vector.slice(3 + index * classes, 3 + (index + 1) * classes)));
  }

  report(): EvalReport {
    const correct = this.confusion.reduce((sum, row, index) => sum + row[index], 0);
    const perClass: EvalReport['perClass'] = {};
    const classAccuracies: number[] = [];
    this.classes.forEach((label, index) => {
      const count = this.confusion[index].reduce((a, b) => a + b, 0);
      const accuracy = count > 0 ? this.confusion[index][index] / count : 0;
      perClass[label] = { accuracy, count };
      if (count > 0) classAccuracies.push(accuracy);
    });
    const report: EvalReport = {
      count: this.count,
      loss: this.count > 0 ? this.lossSum / this.count : NaN,
      accuracy: this.count > 0 ? correct / this.count : 0,
      // Classes with no samples have no accuracy: they are left out of the mean, as is usual.
      meanClassAccuracy: classAccuracies.length > 0 ? classAccuracies.reduce((a, b) => a + b, 0) / classAccuracies.length : 0,
      confusion: this.confusion.map((row) => [...row]),
      perClass,
    };
    if (this.classes.length > 5) report.top5 = this.count > 0 ? this.top5Hits / this.count : 0;
    return report;
  }
}

export interface Prediction {
  label: string;
  index: number;
  score: number;
  probabilities: Record<string, number>;
  topK: { label: string; score: number }[];
}

/** One probability row as a Prediction: the top class, every class's probability, and the top `topK`. */
export function prediction(classes: readonly string[], row: Float32Array, topK: number): Prediction {
  const ranked = topIndices(row, Math.min(topK, classes.length));
  const probabilities: Record<string, number> = {};
  classes.forEach((label, index) => { probabilities[label] = row[index]; });
  return {
    label: classes[ranked[0]],
    index: ranked[0],
    score: row[ranked[0]],
    probabilities,
    topK: ranked.map((index) => ({ label: classes[index], score: row[index] })),
  };
}
