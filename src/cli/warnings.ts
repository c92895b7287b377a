// Node prints process warnings as "(node:1234) Warning: ..." with a hint about --trace-warnings,
// which reads like a crash in a command's output. The command line prints them in its own shape.

/** Warning codes a command has already told the user about in its own words. */
const silenced = new Set<string>();

export function silenceWarning(code: string): void {
  silenced.add(code);
}

export function installWarningPrinter(): void {
  process.removeAllListeners('warning');
  // Every rank of a data-parallel run would say the same thing: rank 0 speaks for the group.
  const otherRank = Number(process.env.WORLD_SIZE ?? 1) > 1 && Number(process.env.RANK ?? 0) !== 0;
  process.on('warning', (warning: Error & { code?: string }) => {
    if (otherRank) return;
    if (warning.code !== undefined && silenced.has(warning.code)) return;
    if (warning.name === 'DeprecationWarning') return;
    process.stderr.write(`video-rnn: warning: ${warning.message}\n`);
  });
}
