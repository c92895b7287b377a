// A node:test reporter that writes each test file's wall time, one "seconds<TAB>status<TAB>file" line
// per file, slowest first. With --test-concurrency=1 the files run one after another, so the time
// from one finished test to the next belongs to the file of the next (its process start and its
// `before` hooks included).
import path from 'node:path';

export default async function* testTimes(source) {
  const files = new Map();
  let last = performance.now();
  for await (const event of source) {
    if (event.type !== 'test:pass' && event.type !== 'test:fail') continue;
    const file = event.data.file;
    if (file === undefined) continue;
    const now = performance.now();
    const entry = files.get(file) ?? { seconds: 0, failed: false };
    entry.seconds += (now - last) / 1000;
    entry.failed ||= event.type === 'test:fail' && event.data.details?.type !== 'suite';
    files.set(file, entry);
    last = now;
  }
  const rows = [...files].sort(([, a], [, b]) => b.seconds - a.seconds);
  for (const [file, { seconds, failed }] of rows) {
    yield `${seconds.toFixed(1)}\t${failed ? 'fail' : 'pass'}\t${path.relative(process.cwd(), file)}\n`;
  }
}
