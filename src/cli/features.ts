// `video-rnn features stats|prune DIR`: what a feature store holds, and removing what no model can use
// any more (entries of other backbones, of videos that are gone or changed, damaged ones).
import { Command, InvalidArgumentError } from 'commander';
import fs from 'node:fs';
import path from 'node:path';
import { VideoRNNError } from '../errors';
import { FeatureStore } from '../features/store';
import type { FeatureStoreStats, PruneReport } from '../features/types';
import { loadBackbone } from '../weights/reference';
import { bytes, printJson, table } from './format';

interface StatsFlags {
  json: boolean;
}

interface PruneFlags {
  keepBackbone?: string[];
  weights?: string;
  missing: boolean;
  changed: boolean;
  verify: boolean;
  dryRun: boolean;
  json: boolean;
}

function backboneId(text: string, previous: string[] | undefined): string[] {
  if (!/^[0-9a-f]{64}$/.test(text)) throw new InvalidArgumentError('Expected a backbone identity: 64 lowercase hex digits (video-rnn info MODEL shows one).');
  return [...(previous ?? []), text];
}

/** Opens an existing store only: stats and prune never make one where a path was mistyped. */
async function openExisting(folder: string): Promise<FeatureStore> {
  const stats = await fs.promises.stat(folder).catch(() => null);
  if (stats === null || !stats.isDirectory()) throw new VideoRNNError('E_FEATURE_STORE', `No feature store at ${folder} (no such folder)`);
  if ((await fs.promises.readdir(folder)).length === 0) throw new VideoRNNError('E_FEATURE_STORE', `No feature store at ${folder} (an empty folder)`);
  return FeatureStore.open(folder, (message: string) => process.stderr.write(`video-rnn: warning: ${message}\n`));
}

function statsText(stats: FeatureStoreStats): string {
  const lines = [
    `store:      ${path.resolve(stats.path)} (entries stored as ${stats.dtype})`,
    `entries:    ${stats.entries} (${bytes(stats.bytes)})`,
    `claims:     ${stats.claims} (entries being computed now${stats.staleClaims > 0 ? `; ${stats.staleClaims} left by writers that died` : ''})`,
    `temporary:  ${stats.temporaryFiles} (entries being written now, or left by writers that died)`,
    `corrupt:    ${stats.corrupt}${stats.corrupt > 0 ? ' (a reader recomputes them; video-rnn features prune removes them)' : ''}`,
  ];
  const backbones = Object.entries(stats.backbones).sort((a, b) => b[1].entries - a[1].entries);
  lines.push(backbones.length === 0 ? 'backbones:  none' : `backbones:  ${backbones.length}`);
  if (backbones.length > 0) {
    lines.push(table([['identity', 'entries', 'size'], ...backbones.map(([identity, use]) => [identity, String(use.entries), bytes(use.bytes)])], '  '));
  }
  return lines.join('\n');
}

function pruneText(report: PruneReport, dryRun: boolean): string {
  const { reasons } = report;
  const why = [[reasons.otherBackbone, 'of other backbones'], [reasons.missingSource, 'of videos that no longer exist'],
    [reasons.changedSource, 'of videos changed since'], [reasons.corrupt, 'corrupt'], [reasons.staleClaim, 'claims left by dead writers'],
    [reasons.temporaryFile, 'partly written files left by dead writers']]
    .filter(([count]) => (count as number) > 0).map(([count, text]) => `${count} ${text}`);
  const verb = dryRun ? 'would remove' : 'removed';
  return `${verb} ${report.removed} ${report.removed === 1 ? 'entry' : 'entries'} (${bytes(report.bytesFreed)})${why.length > 0 ? `: ${why.join(', ')}` : ''}; ${report.kept} kept` +
    (dryRun ? ' (dry run: nothing was removed)' : '');
}

export function registerFeatures(program: Command): void {
  const features = program.command('features')
    .description('inspect or clean a feature store (see extract and --features)');
  features.command('stats')
    .description('entries, bytes, backbones present (entries per identity), claims in progress and corrupt entries')
    .argument('<dir>', 'the feature store folder')
    .option('--json', 'print one JSON object on stdout instead of text', false)
    .action(async (folder: string, flags: StatsFlags) => {
      const stats = await (await openExisting(folder)).stats();
      if (flags.json) printJson(stats);
      else process.stdout.write(statsText(stats) + '\n');
    });
  features.command('prune')
    .description('remove entries no model can use: corrupt ones and what dead writers left, always; with the options, other backbones and missing or changed videos')
    .argument('<dir>', 'the feature store folder')
    .option('--keep-backbone <identity...>', 'remove the entries of every other backbone (repeatable)', backboneId)
    .option('--weights <file>', "remove the entries of every backbone but this weights file's")
    .option('--missing', 'remove the entries of video files that no longer exist at the path they were read from', false)
    .option('--changed', 'remove the entries of video files whose content changed since (never read again)', false)
    .option('--verify', 'also read every entry whole and check its checksum (reads every byte of the store), removing those that fail', false)
    .option('--dry-run', 'count what would be removed, remove nothing', false)
    .option('--json', 'print one JSON object on stdout instead of text', false)
    .action(async (folder: string, flags: PruneFlags) => {
      const keep = [...(flags.keepBackbone ?? [])];
      if (flags.weights !== undefined) keep.push((await loadBackbone(flags.weights)).reference.identity);
      const store = await openExisting(folder);
      const report = await store.prune({ keepBackbones: keep.length > 0 ? keep : undefined, missingSources: flags.missing,
        changedSources: flags.changed, verify: flags.verify, dryRun: flags.dryRun });
      if (flags.json) printJson({ path: store.path, dryRun: flags.dryRun, ...report });
      else process.stdout.write(pruneText(report, flags.dryRun) + '\n');
    });
}
