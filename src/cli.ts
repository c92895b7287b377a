#!/usr/bin/env node
// The `video-rnn` command. Exit codes: 0 done, 1 failed, 2 bad usage, 130 interrupted (see README).
import { CommanderError } from 'commander';
import { buildProgram } from './cli/program';
import { errorDetails, errorLine, exitCodeOf, exitCodes } from './cli/errors';
import { WorkersExited } from './cli/launch';
import { installWarningPrinter } from './cli/warnings';

async function main(argv: string[]): Promise<number> {
  installWarningPrinter();
  const program = buildProgram();
  try {
    await program.parseAsync(argv);
    return exitCodes.ok;
  } catch (error) {
    if (error instanceof WorkersExited) return error.exitCode;
    const code = exitCodeOf(error);
    if (code === exitCodes.ok) return code;
    // Commander has already shown the help when no command was given.
    if (error instanceof CommanderError && error.code === 'commander.help') return code;
    const verbose = program.opts().verbose === true || argv.includes('--verbose');
    // The command whose help to name: with its subcommand where it has them (`features prune`).
    const words = argv.slice(2);
    const at = words.findIndex((word) => program.commands.some((candidate) => candidate.name() === word));
    const parent = at < 0 ? undefined : program.commands.find((candidate) => candidate.name() === words[at]);
    const child = parent?.commands.find((candidate) => candidate.name() === words[at + 1]);
    const command = parent === undefined ? undefined : child === undefined ? parent.name() : `${parent.name()} ${child.name()}`;
    process.stderr.write(errorLine(error, command) + '\n');
    if (verbose && !(error instanceof CommanderError)) process.stderr.write(errorDetails(error) + '\n');
    return code;
  }
}

main(process.argv).then((code) => {
  process.exitCode = code;
});
