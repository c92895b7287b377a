// The limits every ffmpeg and ffprobe start works under (src/video/limits.ts), as options of every
// command: workers started with --nproc get the same command line, so they get the same limits.
import { Command, InvalidArgumentError } from 'commander';
import { VideoRNNError } from '../errors';
import { parseFormats, videoLimits } from '../video/limits';
import * as parse from './arguments';

function formats(text: string): readonly string[] {
  try {
    return parseFormats('--video-formats', text);
  } catch (error) {
    if (error instanceof VideoRNNError) throw new InvalidArgumentError('Expected ffmpeg demuxer names, comma-separated ("default" for the built-in list).');
    throw error;
  }
}

export function addVideoOptions(command: Command): Command {
  return command
    .option('--video-formats <names>', 'container formats ffmpeg may read, comma-separated ffmpeg demuxer names; ' +
      '"default" is the built-in list (or set VIDEO_RNN_FORMATS; widening is a risk, see docs/video.md)', formats)
    .option('--max-clip-frames <n>', 'most frames one decoded clip may hold without frames/maxFrames sampling ' +
      '(default 3000, or VIDEO_RNN_MAX_CLIP_FRAMES)', parse.integerBetween(1, 1_000_000))
    .option('--max-pixels <n>', 'most pixels of one decoded picture (default 33177600, 8K UHD; or VIDEO_RNN_MAX_PIXELS)',
      parse.integerBetween(1, 2_147_483_647));
}

export function applyVideoFlags(flags: { videoFormats?: readonly string[]; maxClipFrames?: number; maxPixels?: number }): void {
  videoLimits({ formats: flags.videoFormats, maxClipFrames: flags.maxClipFrames, maxPixels: flags.maxPixels });
}
