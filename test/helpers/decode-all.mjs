// Decodes every file with every setting in a child process under a given VIDEO_RNN_TUNING, and returns
// a digest per clip (or the error's code and message): what the container-index tests compare between
// the in-process readers and the ffprobe path.
import { execFile } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

const decodeAllSource = `
  import crypto from 'node:crypto';
  import { decodeVideo } from ${JSON.stringify(path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../dist/video/index.js'))};
  const [files, settings] = JSON.parse(process.argv[1]);
  const digests = [];
  for (const file of files) {
    for (const options of settings) {
      try {
        const clip = await decodeVideo(file, options);
        digests.push([clip.frames, clip.width, clip.height, crypto.createHash('sha256').update(clip.data).digest('hex')]);
      } catch (error) {
        digests.push([error.code, error.message]);
      }
    }
  }
  console.log(JSON.stringify(digests));
`;

/** [frames, width, height, sha256] or [code, message] per file and setting, files outer. */
export async function decodeAll(tuning, files, settings, environment = {}) {
  const { stdout } = await promisify(execFile)(process.execPath, ['--input-type=module', '-e', decodeAllSource,
    JSON.stringify([files, settings])], { env: { ...process.env, ...environment, VIDEO_RNN_TUNING: tuning }, encoding: 'utf8', maxBuffer: 16 * 2 ** 20 });
  return JSON.parse(stdout);
}
