// Decodes every file with every setting in a child process under a given VIDEO_RNN_TUNING, and returns
// a digest per clip (or the error's code and message): what the container-index tests compare between
// the in-process readers and the ffprobe path, and the shared-process tests between videos decoded
// one after the other and all at once.
import { execFile } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

const decodeAllSource = `
  import crypto from 'node:crypto';
  import { decodeVideo } from ${JSON.stringify(path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../dist/video/index.js'))};
  const [files, settings, concurrent] = JSON.parse(process.argv[1]);
  const digest = async (file, options) => {
    try {
      const clip = await decodeVideo(file, options);
      return [clip.frames, clip.width, clip.height, crypto.createHash('sha256').update(clip.data).digest('hex')];
    } catch (error) {
      return [error.code, error.message];
    }
  };
  const digests = [];
  if (concurrent) {
    digests.push(...await Promise.all(files.flatMap((file) => settings.map((options) => digest(file, options)))));
  } else {
    for (const file of files) {
      for (const options of settings) digests.push(await digest(file, options));
    }
  }
  console.log(JSON.stringify(digests));
`;

/**
 * [frames, width, height, sha256] or [code, message] per file and setting, files outer; one decode
 * after the other, or with `concurrent` all started at once.
 */
export async function decodeAll(tuning, files, settings, environment = {}, { concurrent = false } = {}) {
  const { stdout } = await promisify(execFile)(process.execPath, ['--input-type=module', '-e', decodeAllSource,
    JSON.stringify([files, settings, concurrent])], { env: { ...process.env, ...environment, VIDEO_RNN_TUNING: tuning }, encoding: 'utf8', maxBuffer: 16 * 2 ** 20 });
  return JSON.parse(stdout);
}
