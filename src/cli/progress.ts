// Progress of training and evaluation on stderr: bars (cli-progress) on a terminal, a plain line per
// epoch (and every few seconds within a long one) when stderr is a file or a pipe.
import { MultiBar, Presets, SingleBar } from 'cli-progress';
import type { ProgressEvent } from '../training';
import { fixed, seconds } from './format';

export interface ProgressSettings {
  /** False with --quiet or --json's quiet companion: nothing is written. */
  enabled: boolean;
  /** Whether a validation pass follows each epoch (its result joins the epoch's line). */
  validation: boolean;
  stream?: NodeJS.WriteStream;
  /** extract: the clips this process handles (its shard in a group) and the clips per batch, to count clips done. */
  extract?: { clips: number; batchSize: number; shard?: string };
}

interface EpochTotals {
  loss: number;
  accuracy: number;
}

// A plain line at most this often inside one epoch, so a log shows a long first epoch is alive.
const plainIntervalMs = 10_000;

export class ProgressDisplay {
  private readonly stream: NodeJS.WriteStream;
  private readonly enabled: boolean;
  private readonly validation: boolean;
  private readonly interactive: boolean;
  private readonly extract: ProgressSettings['extract'];
  private bars: MultiBar | undefined;
  private trainBar: SingleBar | undefined;
  private passBar: SingleBar | undefined;
  private passPhase: string | undefined;
  private epochTotals: EpochTotals | undefined;
  private epochStarted = performance.now();
  private lastPlainLine = performance.now();
  private extractTenths = 0;

  constructor(settings: ProgressSettings) {
    this.stream = settings.stream ?? process.stderr;
    this.enabled = settings.enabled;
    this.validation = settings.validation;
    this.interactive = this.stream.isTTY === true;
    this.extract = settings.extract;
  }

  /** Pass as `onProgress`. */
  readonly update = (event: ProgressEvent): void => {
    if (!this.enabled) return;
    if (event.phase === 'train') this.onTrain(event);
    else if (event.phase === 'extract') this.onExtract(event);
    else this.onPass(event);
  };

  /** A message that keeps the bars intact. */
  note(message: string): void {
    if (!this.enabled) return;
    if (this.bars) {
      this.bars.log(`${message}\n`);
      this.bars.update();
    } else {
      this.stream.write(`${message}\n`);
    }
  }

  stop(): void {
    this.bars?.stop();
    this.bars = undefined;
    this.trainBar = undefined;
    this.passBar = undefined;
  }

  private multiBar(): MultiBar {
    this.bars ??= new MultiBar({
      stream: this.stream,
      format: (options, params, payload: Record<string, string>) => {
        const size = options.barsize ?? 30;
        const filled = Math.round(params.progress * size);
        const bar = (options.barCompleteString ?? '').slice(0, filled) + (options.barIncompleteString ?? '').slice(0, size - filled);
        return `${payload.label.padEnd(9)} ${bar} ${payload.detail}`;
      },
      hideCursor: true,
      clearOnComplete: false,
      gracefulExit: false,
      barsize: 30,
    }, Presets.shades_classic);
    return this.bars;
  }

  /** Call when the work starts, so the first epoch's time leaves out what came before it. */
  begin(): void {
    this.epochStarted = performance.now();
    this.lastPlainLine = this.epochStarted;
  }

  private onTrain(event: ProgressEvent): void {
    // The epoch's own remaining time: with cached embeddings the first epoch is far slower than the
    // others, so a whole-run estimate from it would be minutes too long.
    const perBatch = (performance.now() - this.epochStarted) / 1000 / event.batch;
    const detail = `epoch ${event.epoch}/${event.epochs}  batch ${event.batch}/${event.batches}  ` +
      `loss ${fixed(event.loss, 4)}  accuracy ${fixed(event.accuracy)}  ${event.samplesPerSecond.toFixed(1)} clips/s  ` +
      `epoch ends in ${seconds(perBatch * (event.batches - event.batch))}`;
    const done = (event.epoch - 1) * event.batches + event.batch;
    if (this.interactive) {
      this.trainBar ??= this.multiBar().create(event.epochs * event.batches, 0, { label: 'training', detail });
      this.trainBar.setTotal(event.epochs * event.batches);
      this.trainBar.update(done, { label: 'training', detail });
    } else if (performance.now() - this.lastPlainLine > plainIntervalMs && event.batch < event.batches) {
      this.lastPlainLine = performance.now();
      this.stream.write(`${detail}\n`);
    }
    if (event.batch === event.batches) {
      this.epochTotals = { loss: event.loss, accuracy: event.accuracy };
      if (!this.validation) this.epochLine(event);
    }
  }

  /** extract: clips done of the whole dataset (or of this rank's shard), clips/s and the time left. */
  private onExtract(event: ProgressEvent): void {
    // Events count batches; every batch but the last is full.
    const total = this.extract?.clips ?? event.batches;
    const done = this.extract ? Math.min(event.batch * this.extract.batchSize, total) : event.batch;
    const detail = `${done}/${total} clips${this.extract?.shard ? ` (${this.extract.shard})` : ''}  ` +
      `${event.samplesPerSecond.toFixed(1)} clips/s  ETA ${seconds(event.eta)}`;
    if (this.interactive) {
      this.passBar ??= this.multiBar().create(total, 0, { label: 'extract', detail });
      this.passBar.update(done, { label: 'extract', detail });
      return;
    }
    // A log gets a line per tenth of the work, and one every few seconds when a tenth takes long.
    const tenth = Math.floor((10 * event.batch) / event.batches);
    if (tenth > this.extractTenths || performance.now() - this.lastPlainLine > plainIntervalMs) {
      this.extractTenths = tenth;
      this.lastPlainLine = performance.now();
      this.stream.write(`extract  ${detail}\n`);
    }
  }

  private onPass(event: ProgressEvent): void {
    const label = event.phase === 'validate' ? 'validate' : 'evaluate';
    const detail = `batch ${event.batch}/${event.batches}  loss ${fixed(event.loss, 4)}  accuracy ${fixed(event.accuracy)}`;
    if (this.interactive) {
      if (!this.passBar || this.passPhase !== label) {
        if (this.passBar) this.bars?.remove(this.passBar);
        this.passBar = this.multiBar().create(event.batches, 0, { label, detail });
        this.passPhase = label;
      }
      this.passBar.update(event.batch, { label, detail });
    }
    if (event.batch !== event.batches) return;
    if (this.interactive && this.passBar) {
      this.bars?.remove(this.passBar);
      this.passBar = undefined;
    }
    if (event.phase === 'validate') this.epochLine(event, { loss: event.loss, accuracy: event.accuracy });
  }

  private epochLine(event: ProgressEvent, validation?: EpochTotals): void {
    const now = performance.now();
    const totals = this.epochTotals ?? { loss: NaN, accuracy: NaN };
    const width = String(event.epochs).length;
    let line = `epoch ${String(event.epoch).padStart(width)}/${event.epochs}  loss ${fixed(totals.loss, 4)}  accuracy ${fixed(totals.accuracy)}`;
    if (validation) line += `  validation loss ${fixed(validation.loss, 4)}  accuracy ${fixed(validation.accuracy)}`;
    line += `  (${seconds((now - this.epochStarted) / 1000)})`;
    this.epochStarted = now;
    this.lastPlainLine = now;
    this.note(line);
  }
}
