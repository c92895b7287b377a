// GET /metrics: Prometheus text that counts what was sent (requests by route and status, batches,
// frames embedded, queue depth) and Node's process metrics.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
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

test('/metrics parses as Prometheus text and counts the requests, batches, clips, frames and errors sent', async () => {
  // Batches close only when full (4 clips of one size) or when the service closes: their number and
  // size are then known from the requests alone, whatever the decoding times.
  const service = new PredictionService(model, { maxBatchClips: 4, maxDelayMs: 60_000 });
  const { app, url } = await startServer({ service });
  try {
    // Sent by hand: 4 raw uploads of video 0 at once (one batch of 4), one multipart request of the
    // four videos (another batch of 4), one 415, one upload that is not a video (422), two /healthz.
    const raw = await Promise.all(Array.from({ length: 4 }, () => postRaw(url, videos[0])));
    assert.deepEqual(raw.map((response) => response.status), [200, 200, 200, 200]);
    assert.equal((await postMultipart(url, videos)).status, 200);
    assert.equal((await postRaw(url, videos[0], { type: 'text/plain' })).status, 415);
    const garbage = path.join(folder, 'not-a-video.mp4');
    fs.writeFileSync(garbage, Buffer.alloc(4096, 7));
    assert.equal((await postRaw(url, garbage)).status, 422);
    assert.equal((await fetch(`${url}/healthz`)).status, 200);
    assert.equal((await fetch(`${url}/healthz`)).status, 200);
    const clipsSent = 4 + videos.length;
    const framesSent = 4 * dataset.clips[0].frames + dataset.clips.reduce((sum, clip) => sum + clip.frames, 0);

    const response = await fetch(`${url}/metrics`);
    assert.equal(response.status, 200);
    assert.match(response.headers.get('content-type'), /^text\/plain; version=0\.0\.4/);
    const { value, types } = parsePrometheus(await response.text());
    assert.equal(value('video_rnn_http_requests_total', { route: '/v1/predict', method: 'POST', status: '200' }), 5);
    assert.equal(value('video_rnn_http_requests_total', { route: '/v1/predict', status: '415' }), 1);
    assert.equal(value('video_rnn_http_requests_total', { route: '/v1/predict', status: '422' }), 1);
    assert.equal(value('video_rnn_http_requests_total', { route: '/healthz', status: '200' }), 2);
    assert.equal(value('video_rnn_http_request_duration_seconds_count', { route: '/v1/predict' }), 7);
    assert.equal(types.get('video_rnn_http_request_duration_seconds'), 'histogram');
    assert.equal(types.get('video_rnn_batch_clips'), 'histogram');
    // Two batches of 4 clips: none in the buckets below 4, both from le="4" up.
    assert.equal(value('video_rnn_batch_clips_count'), 2);
    assert.equal(value('video_rnn_batch_clips_bucket', { le: '2' }), 0);
    assert.equal(value('video_rnn_batch_clips_bucket', { le: '4' }), 2);
    assert.equal(value('video_rnn_batch_clips_sum'), clipsSent);
    assert.equal(value('video_rnn_batch_frames_count'), 2);
    assert.equal(value('video_rnn_batch_frames_sum'), framesSent);
    assert.equal(value('video_rnn_frames_embedded_total'), framesSent);
    assert.equal(value('video_rnn_queue_clips'), 0);
    assert.equal(value('video_rnn_rejections_total', { code: 'E_VIDEO_DECODE' }), 1);
    assert.equal(value('video_rnn_rejections_total'), 1, 'no other rejection');
    assert.ok(value('process_cpu_user_seconds_total') > 0);
    assert.ok(value('nodejs_heap_size_used_bytes') > 0);
    const info = await json(await fetch(`${url}/v1/model`));
    assert.deepEqual(info.classes, ['a', 'b']);
  } finally {
    await app.close();
    await service.close();
  }
});
