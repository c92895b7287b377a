// GET /metrics: Prometheus text that counts what was sent (requests by route and status, batches,
// frames embedded, queue depth) and Node's process metrics.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { PredictionService, VideoRNN, makeSyntheticDataset } from '../dist/index.js';
import { temporaryFolder } from './helpers/media.mjs';
import { json, parsePrometheus, postMultipart, postRaw, startServer } from './helpers/serve.mjs';

const folder = temporaryFolder(after);
let model;
let dataset;
let videos;
before(async () => {
  model = await VideoRNN.create({ classes: ['a', 'b'], hiddenSize: 8, headSize: 8, frameSize: 32, seed: 12 });
  dataset = await makeSyntheticDataset(path.join(folder, 'clips'),
    { classes: ['left', 'right'], perClass: 2, size: 32, minFrames: 3, maxFrames: 7, seed: 13 });
  videos = Array.from({ length: dataset.size }, (_, index) => dataset.sample(index).source);
});
after(() => model.dispose());

test('/metrics parses as Prometheus text and counts the requests, batches and frames sent', async () => {
  const service = new PredictionService(model, { maxBatchClips: 4, maxDelayMs: 10 });
  const { app, url } = await startServer({ service });
  try {
    // By hand: 3 raw uploads of video 0, one multipart of all four, one 415, two /healthz.
    for (let index = 0; index < 3; index += 1) assert.equal((await postRaw(url, videos[0])).status, 200);
    assert.equal((await postMultipart(url, videos)).status, 200);
    assert.equal((await postRaw(url, videos[0], { type: 'text/plain' })).status, 415);
    await fetch(`${url}/healthz`);
    await fetch(`${url}/healthz`);
    const framesSent = 3 * dataset.clips[0].frames + dataset.clips.reduce((sum, clip) => sum + clip.frames, 0);

    const response = await fetch(`${url}/metrics`);
    assert.equal(response.status, 200);
    assert.match(response.headers.get('content-type'), /^text\/plain; version=0\.0\.4/);
    const { value, types } = parsePrometheus(await response.text());
    assert.equal(value('video_rnn_http_requests_total', { route: '/v1/predict', method: 'POST', status: '200' }), 4);
    assert.equal(value('video_rnn_http_requests_total', { route: '/v1/predict', status: '415' }), 1);
    assert.equal(value('video_rnn_http_requests_total', { route: '/healthz', status: '200' }), 2);
    assert.equal(value('video_rnn_http_request_duration_seconds_count', { route: '/v1/predict' }), 5);
    assert.equal(types.get('video_rnn_http_request_duration_seconds'), 'histogram');
    // 7 clips in all: three single uploads and the four parts of the multipart request.
    assert.equal(value('video_rnn_batch_clips_count'), service.stats.batches);
    assert.equal(value('video_rnn_batch_clips_sum'), 7);
    assert.equal(value('video_rnn_batch_frames_sum'), framesSent);
    assert.equal(value('video_rnn_frames_embedded_total'), framesSent);
    assert.equal(value('video_rnn_queue_clips'), 0);
    assert.equal(value('video_rnn_rejections_total'), undefined);
    assert.ok(value('process_cpu_user_seconds_total') > 0);
    assert.ok(value('nodejs_heap_size_used_bytes') > 0);
    const info = await json(await fetch(`${url}/v1/model`));
    assert.deepEqual(info.classes, ['a', 'b']);
  } finally {
    await app.close();
    await service.close();
  }
});
