// CPU time from /proc, for the benchmarks that count what decoding costs.
import fs from 'node:fs';

// Linux's USER_HZ: 100 on every architecture Node.js runs on.
const ticksPerSecond = 100;

/** utime + stime of a /proc stat file, in seconds (fields 14 and 15; 16 and 17 for waited-for children). */
export function statSeconds(file, children) {
  const text = fs.readFileSync(file, 'utf8');
  const fields = text.slice(text.lastIndexOf(')') + 2).split(' ');
  const first = children ? 13 : 11;
  return (Number(fields[first]) + Number(fields[first + 1])) / ticksPerSecond;
}

/** ppid, the 4th field of a /proc stat line. */
function parentOf(file) {
  const text = fs.readFileSync(file, 'utf8');
  return Number(text.slice(text.lastIndexOf(')') + 2).split(' ')[1]);
}

/**
 * CPU seconds of everything started from this process: children that were waited for, plus the live
 * children and what they waited for. ffmpeg and ffprobe run under the long-lived helper process
 * (src/video/launcher.ts), so they count through it, with the helper's own relaying.
 */
export function childrenCpuSeconds() {
  let seconds = statSeconds('/proc/self/stat', true);
  for (const entry of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const file = `/proc/${entry}/stat`;
      if (parentOf(file) === process.pid) seconds += statSeconds(file, false) + statSeconds(file, true);
    } catch {
      // The process ended between the listing and the read.
    }
  }
  return seconds;
}
