// `video-rnn/fastify`: a model behind HTTP in a Fastify 5 app, in one register() call.
//   app.register(videoRNN, { model, serviceOptions: { maxBatchClips: 8 } })
import fastifyPlugin from 'fastify-plugin';
import { videoRNNPlugin as routes } from './serve/http/plugin';

/** Encapsulated (its parsers and hooks stay within its routes); refuses a Fastify other than 5. */
export const videoRNNPlugin = fastifyPlugin(routes, { fastify: '5.x', name: 'video-rnn', encapsulate: true });
export default videoRNNPlugin;
export { videoRNNRequestId } from './serve/http/request-id';
export type { VideoRNNPluginOptions } from './serve/http/plugin';
export type { HttpErrorCode } from './serve/http/errors';
