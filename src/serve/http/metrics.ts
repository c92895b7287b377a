// Prometheus metrics of one mounted plugin, in its own registry (a second mount, or the host
// app's default registry, never collides with it).
import * as prom from 'prom-client';
import type { VideoRNN } from '../../model';
import type { BatchEvent, PredictionService } from '../service';

export interface ServeMetrics {
  registry: prom.Registry;
  observeRequest(route: string, method: string, status: number, seconds: number): void;
  /** An upload refused (503) before its body was read: the service never saw it. */
  refuseUpload(): void;
  /** Stops listening to the service (when the plugin's app closes). */
  detach(): void;
}

export function createMetrics(service: PredictionService, model: VideoRNN, registry: prom.Registry, processMetrics: boolean): ServeMetrics {
  if (processMetrics) prom.collectDefaultMetrics({ register: registry });
  const registers = [registry];
  const requests = new prom.Counter({ name: 'video_rnn_http_requests_total', help: 'HTTP requests answered, by route, method and status',
    labelNames: ['route', 'method', 'status'] as const, registers });
  const latency = new prom.Histogram({ name: 'video_rnn_http_request_duration_seconds', help: 'Time from request to response, by route',
    labelNames: ['route'] as const, buckets: [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60], registers });
  const batchClips = new prom.Histogram({ name: 'video_rnn_batch_clips', help: 'Clips per native batch',
    buckets: [1, 2, 4, 8, 16, 32, 64, 128], registers });
  const batchFrames = new prom.Histogram({ name: 'video_rnn_batch_frames', help: 'Frames per native batch',
    buckets: [8, 16, 32, 64, 128, 256, 512, 1024, 4096], registers });
  const batchSeconds = new prom.Histogram({ name: 'video_rnn_batch_duration_seconds', help: 'Time the model took per batch',
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10], registers });
  new prom.Gauge({ name: 'video_rnn_queue_clips', help: 'Clips accepted and not yet in a running batch', registers,
    collect() { this.set(service.stats.queued); } });
  new prom.Gauge({ name: 'video_rnn_running_clips', help: 'Clips in the batch the model runs now', registers,
    collect() { this.set(service.stats.running); } });
  // Counted by the native model itself, so frames embedded outside the service (if any) count too.
  let framesSeen = model.stats.framesEmbedded;
  new prom.Counter({ name: 'video_rnn_frames_embedded_total', help: 'Frames the VGG16 backbone embedded', registers,
    collect() {
      const now = model.stats.framesEmbedded;
      if (now > framesSeen) this.inc(now - framesSeen);
      framesSeen = now;
    } });
  const seenRejections: Record<string, number> = {};
  new prom.Counter({ name: 'video_rnn_rejections_total', help: 'Prediction calls rejected, by error code', labelNames: ['code'] as const,
    registers,
    collect() {
      for (const [code, count] of Object.entries(service.stats.rejections)) {
        const added = (count ?? 0) - (seenRejections[code] ?? 0);
        if (added > 0) this.inc({ code }, added);
        seenRejections[code] = count ?? 0;
      }
    } });
  const refusedUploads = new prom.Counter({ name: 'video_rnn_uploads_refused_total',
    help: 'Uploads refused with 503 before their body was read (queue or max uploads full)', registers });
  const onBatch = (event: BatchEvent): void => {
    batchClips.observe(event.clips);
    batchFrames.observe(event.frames);
    batchSeconds.observe(event.durationMs / 1000);
  };
  service.on('batch', onBatch);
  return {
    registry,
    observeRequest(route, method, status, seconds) {
      requests.inc({ route, method, status: String(status) });
      latency.observe({ route }, seconds);
    },
    refuseUpload() {
      refusedUploads.inc();
    },
    detach() {
      service.off('batch', onBatch);
    },
  };
}
