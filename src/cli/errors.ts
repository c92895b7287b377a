// How the command line ends: exit codes and the one-line error message.
import { CommanderError } from 'commander';
import { ErrorCode, VideoRNNError } from '../errors';

/** Exit codes, documented in the README; scripts branch on them. */
export const exitCodes = Object.freeze({
  ok: 0,
  failure: 1,
  usage: 2,
  // 128 + SIGINT (2), what shells report for a process stopped by Ctrl-C.
  interrupted: 130,
});

/** Commander's codes that mean help or the version was asked for, not a mistake. */
const informational = new Set(['commander.helpDisplayed', 'commander.version']);

export function exitCodeOf(error: unknown): number {
  if (error instanceof CommanderError) {
    if (informational.has(error.code)) return exitCodes.ok;
    return exitCodes.usage;
  }
  if (error instanceof VideoRNNError && error.code === 'E_ABORTED') return exitCodes.interrupted;
  return exitCodes.failure;
}

function codeOf(error: unknown): ErrorCode | 'E_UNEXPECTED' {
  // Commander reports every mistake in the command line itself: unknown option, missing argument, bad value.
  if (error instanceof CommanderError) return 'E_USAGE';
  if (error instanceof VideoRNNError) return error.code;
  // A Node system error (ENOENT, EACCES, ...) that no command turned into a VideoRNNError: the
  // library's file-system code, with the system code left in the message.
  if (typeof (error as NodeJS.ErrnoException | null)?.syscall === 'string') return 'E_IO';
  return 'E_UNEXPECTED';
}

/** Several-line library messages (a list of problems in a manifest) are joined so the error stays on one line. */
function oneLine(text: string): string {
  return text.split('\n').map((part) => part.trim()).filter((part) => part.length > 0).join('; ');
}

export function errorLine(error: unknown, command?: string): string {
  let message = error instanceof Error ? error.message : String(error);
  if (error instanceof CommanderError) {
    message = message.replace(/^error: /, '').replace(/\n+/g, ' ');
    if (command) message += ` (see: video-rnn ${command} --help)`;
  }
  return `video-rnn: ${codeOf(error)}: ${oneLine(message)}`;
}

/** The stack of the error and of its causes, for --verbose. */
export function errorDetails(error: unknown): string {
  const parts: string[] = [];
  let current: unknown = error;
  for (let depth = 0; current !== undefined && current !== null && depth < 5; depth += 1) {
    parts.push(current instanceof Error ? current.stack ?? current.message : String(current));
    current = current instanceof Error ? current.cause : undefined;
    if (current !== undefined && current !== null) parts.push('caused by:');
  }
  return parts.join('\n');
}
