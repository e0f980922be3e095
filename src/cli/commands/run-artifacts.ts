/**
 * `runfleet run artifacts ID [TASK]`: a run's stored artifacts; with a task and `--out DIR` (or
 * `--archive FILE`) downloads them straight from the object store through a link the control
 * workers sign (this machine needs a path to the store, not its credentials).
 */
import type { Command } from 'commander';
import { createWriteStream, mkdirSync, mkdtempSync, renameSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { formatByteSize } from '../../bytes';
import { RunfleetError } from '../../errors';
import { unpackArchive } from '../../runner/archive';
import { commandConfig, commandOutput, withClient, type CliContext } from '../context';
import { escapeControl, table } from '../render';

interface Flags {
  out?: string;
  archive?: string;
  json?: boolean;
}

export function register(run: Command, ctx: CliContext): void {
  run
    .command('artifacts')
    .description("list a run's stored artifacts, or download a task's (--out DIR, --archive FILE)")
    .argument('<id>', 'run: workflow id (run/<group>/<id>), <group>/<id>, or an id of the default group')
    .argument('[task]', 'the task whose artifacts to list or download')
    .option('--out <dir>', "unpack the task's artifacts into this folder")
    .option('--archive <file>', "save the task's artifacts as they are stored (a .tar.gz)")
    .option('--json', 'print the list as JSON (with the download links, valid 15 minutes)')
    .action(async (id: string, task: string | undefined, flags: Flags, cmd: Command) => {
      const out = commandOutput(flags);
      if ((flags.out || flags.archive) && task === undefined)
        throw new RunfleetError(
          'InvalidArgument',
          'name the task whose artifacts to download: run artifacts ID TASK --out DIR',
        );
      await withClient(commandConfig(ctx, cmd), async (client) => {
        const found = await client.listArtifacts(id, task);
        if (!flags.out && !flags.archive) {
          out.result(found, () =>
            found.length === 0
              ? `no stored artifacts${task ? ` of task ${task}` : ''}`
              : table(
                  ['TASK', 'SIZE'],
                  found.map((a) => [escapeControl(a.task), formatByteSize(a.bytes)]),
                ),
          );
          return;
        }
        const artifact = found[0];
        if (!artifact) throw new RunfleetError('NotFound', `task ${task ?? ''} has no stored artifacts`);
        const scratch = mkdtempSync(join(tmpdir(), 'runfleet-artifacts-'));
        try {
          const file = join(scratch, 'artifacts.tar.gz');
          const answer = await fetch(artifact.url);
          if (!answer.ok || !answer.body)
            throw new RunfleetError(
              'ComponentUnavailable',
              `the object store answered HTTP ${answer.status} for the artifacts of ${artifact.task}`,
            );
          await pipeline(
            Readable.fromWeb(answer.body as import('node:stream/web').ReadableStream),
            createWriteStream(file),
          );
          if (flags.archive) {
            renameSync(file, resolve(flags.archive));
            out.result(
              { task: artifact.task, archive: resolve(flags.archive), bytes: artifact.bytes },
              () => `${formatByteSize(artifact.bytes)} saved to ${resolve(flags.archive as string)}`,
            );
          }
          if (flags.out) {
            const dir = resolve(flags.out);
            mkdirSync(dir, { recursive: true });
            const { files } = await unpackArchive({
              archive: flags.archive ? resolve(flags.archive) : file,
              root: dir,
            });
            out.result(
              { task: artifact.task, out: dir, entries: files },
              () => `${files} entries of ${artifact.task} unpacked into ${dir}`,
            );
          }
        } finally {
          rmSync(scratch, { recursive: true, force: true });
        }
      });
    });
}
