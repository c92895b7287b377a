// The command tree. Every subcommand is made with program.command(), so it inherits the error
// handling set here (commander copies these settings to subcommands made that way).
import { Command } from 'commander';
import { registerDemo } from './demo';
import { registerEvaluate } from './evaluate';
import { registerExtract } from './extract';
import { registerFeatures } from './features';
import { registerFineTune } from './fine-tune';
import { registerInfo } from './info';
import { packageVersion } from './package-info';
import { registerPredict } from './predict';
import { registerServe } from './serve';
import { registerTrain } from './train';
import { applyVideoFlags, addVideoOptions } from './video-options';

export function buildProgram(): Command {
  const program = new Command('video-rnn')
    .description('Train and run CNN+RNN video classifiers (VGG16 -> bidirectional LSTM) on LibTorch')
    .version(packageVersion(), '-V, --version')
    .option('--verbose', 'show the stack trace of errors')
    .configureHelp({ showGlobalOptions: true, sortSubcommands: false })
    // Errors are printed by the caller as one line; help and version still print normally.
    .configureOutput({ outputError: () => undefined })
    .exitOverride()
    .showSuggestionAfterError(true);
  addVideoOptions(program);
  // Every command that decodes reads the same limits; set once, before the command runs.
  program.hook('preAction', (_program, command) => applyVideoFlags(command.optsWithGlobals()));
  registerDemo(program);
  registerTrain(program);
  registerFineTune(program);
  registerPredict(program);
  registerEvaluate(program);
  registerExtract(program);
  registerFeatures(program);
  registerInfo(program);
  registerServe(program);
  return program;
}
