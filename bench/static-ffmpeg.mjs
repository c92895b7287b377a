// Statically linked ffmpeg and ffprobe for the decoding-cost comparison of bench/training.mjs.
// A distribution's ffmpeg is linked against a couple of hundred shared libraries (216 on Debian 12),
// and every start resolves their symbols: about 0.15 s of CPU before the first frame. Static builds
// start in a few milliseconds. These come from the npm registry (the tarballs carry the binaries;
// their install scripts only chmod them, which is done here), once per work folder:
//   @ffmpeg-installer/linux-x64 4.1.0: ffmpeg N-47683 (2018), static build by johnvansickle.com
//   @ffprobe-installer/linux-x64 5.2.0: ffprobe N-66595 (2023), same builder
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';

const packages = [
  { name: 'ffmpeg', spec: '@ffmpeg-installer/linux-x64@4.1.0' },
  { name: 'ffprobe', spec: '@ffprobe-installer/linux-x64@5.2.0' },
];

function versionLine(binary) {
  return execFileSync(binary, ['-version'], { encoding: 'utf8' }).split('\n')[0];
}

/**
 * { binaries: { ffmpeg, ffprobe, versions }, why: null } from `<work>/static-ffmpeg`, fetched on first
 * use; { binaries: null, why } when this is not linux-x64 or the registry cannot be reached (the
 * comparison is then left out).
 */
export function staticFfmpeg(work) {
  if (process.platform !== 'linux' || process.arch !== 'x64') return { binaries: null, why: `no static build for ${process.platform}-${process.arch}` };
  const folder = path.join(work, 'static-ffmpeg');
  fs.mkdirSync(folder, { recursive: true });
  const binaries = {};
  try {
    for (const { name, spec } of packages) {
      const binary = path.join(folder, name);
      if (!fs.existsSync(binary)) {
        const tarball = execFileSync('npm', ['pack', spec, '--silent', '--pack-destination', folder], { encoding: 'utf8' }).trim().split('\n').at(-1);
        const unpacked = path.join(folder, `${name}-package`);
        fs.mkdirSync(unpacked, { recursive: true });
        execFileSync('tar', ['xzf', path.join(folder, tarball), '-C', unpacked, '--strip-components=1']);
        fs.copyFileSync(path.join(unpacked, name), binary);
        fs.chmodSync(binary, 0o755);
      }
      binaries[name] = binary;
    }
    return { binaries: { ...binaries, versions: { ffmpeg: versionLine(binaries.ffmpeg), ffprobe: versionLine(binaries.ffprobe) } }, why: null };
  } catch (error) {
    return { binaries: null, why: `static ffmpeg unavailable: ${error.message.split('\n')[0]}` };
  }
}
