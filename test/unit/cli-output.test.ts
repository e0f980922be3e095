/**
 * Terminal output: control characters in names, runner strings and reasons from other parties are
 * shown escaped, never acted on; `--json` stays exact; task logs pass as they are.
 */
import { describe, expect, it } from 'vitest';
import { createOutput } from '../../src/cli/output';
import { escapeControl, table, taskChanges } from '../../src/cli/render';
import type { RunState } from '../../src/types';

const HOSTILE = 'build\x1b]0;owned\x07\x1b[2J\r\u202Eevil';
const SHOWN = 'build\\u001b]0;owned\\u0007\\u001b[2J\\u000d\\u202eevil';

function streams(tty = true) {
  const chunks = { stdout: [] as string[], stderr: [] as string[] };
  const make = (name: 'stdout' | 'stderr') =>
    ({
      isTTY: tty,
      columns: 200,
      write: (c: string) => {
        chunks[name].push(c);
        return true;
      },
    }) as unknown as NodeJS.WriteStream;
  return { chunks, io: { stdout: make('stdout'), stderr: make('stderr') } };
}

describe('terminal output', () => {
  it('escapes control characters in text results, lines, errors and log lines', () => {
    const { chunks, io } = streams();
    const out = createOutput({}, io);
    out.result({ name: HOSTILE }, () => `task ${HOSTILE}`);
    out.line(`runner ${HOSTILE}`);
    out.error(`failed: ${HOSTILE}`);
    out.log(`reason ${HOSTILE}`);
    out.logger('INFO').info(`sdk ${HOSTILE}`);
    const all = [...chunks.stdout, ...chunks.stderr].join('');
    console.log(`output: ${JSON.stringify(HOSTILE)} printed as ${JSON.stringify(chunks.stdout[0])}`);
    expect(chunks.stdout[0]).toBe(`task ${SHOWN}\n`);
    expect(all).not.toMatch(/[\x07\x1b\r\u202e]/);
    expect(all.split(SHOWN).length - 1).toBe(5);
  });

  it('keeps its own redraw sequences but escapes the lines it draws', () => {
    const { chunks, io } = streams();
    const out = createOutput({}, io);
    out.live([`a ${HOSTILE}`]);
    out.live([`b ${HOSTILE}`]);
    expect(chunks.stdout[1]).toBe(`\x1b[1F\x1b[0Jb ${SHOWN}\n`);
  });

  it('prints --json exactly, and task logs as they are', () => {
    const { chunks, io } = streams(false);
    const out = createOutput({ json: true }, io);
    out.result({ name: HOSTILE, note: 'caf\u00e9 \u0085' }, () => 'unused');
    expect(JSON.parse(chunks.stdout[0]!)).toEqual({ name: HOSTILE, note: 'caf\u00e9 \u0085' });
    out.write(`log \x1b[32mgreen\x1b[0m\n`);
    expect(chunks.stdout[1]).toBe(`log \x1b[32mgreen\x1b[0m\n`);
  });

  it('aligns tables by the escaped text', () => {
    const text = table(
      ['TASK', 'RUNNER'],
      [
        [HOSTILE, 'r1'],
        ['ok', 'r\x1b[8m2'],
      ],
    );
    console.log(`render: table with hostile cells ->\n${text}`);
    const lines = text.split('\n');
    expect(lines[1]).toBe(`${SHOWN}  r1`);
    expect(lines[2]).toBe(`${'ok'.padEnd(SHOWN.length)}  r\\u001b[8m2`);
    expect(escapeControl('tab\tand\nnewline stay')).toBe('tab\tand\nnewline stay');
  });

  it('escapes what a run says in change lines', () => {
    const task = {
      status: 'failed',
      runner: `r\x1b[1A`,
      startedAt: null,
      finishedAt: null,
      exitCode: 1,
      attempts: 1,
      reason: `boom\x1b[2K`,
      approval: { required: false },
    };
    const state = { tasks: { [HOSTILE]: task } } as unknown as RunState;
    const [line] = taskChanges(null, state);
    const { chunks, io } = streams();
    createOutput({}, io).line(line!);
    console.log(`render: change line -> ${chunks.stdout[0]}`);
    expect(chunks.stdout[0]).toContain(`${SHOWN} failed on r\\u001b[1A (exit 1): boom\\u001b[2K`);
  });
});

describe('log lines', () => {
  it('are JSON objects with their fields when stderr is not a terminal, text at a terminal', () => {
    const piped = streams(false);
    createOutput({}, piped.io).log('task build started', { run: 'run/ci/1', task: 'build', attempt: 2, runner: 'r1' });
    const line = JSON.parse(piped.chunks.stderr.join('')) as Record<string, unknown>;
    expect(line).toMatchObject({
      level: 'info',
      message: 'task build started',
      run: 'run/ci/1',
      task: 'build',
      attempt: 2,
      runner: 'r1',
    });
    expect(Number.isNaN(Date.parse(String(line['time'])))).toBe(false);

    const tty = streams(true);
    createOutput({}, tty.io).log('task build started', { run: 'run/ci/1' });
    expect(tty.chunks.stderr.join('')).toMatch(/^\d\d:\d\d:\d\d task build started\n$/);
  });

  it('follow log.format over the terminal: json at a terminal, text into a pipe, for the SDK logger too', () => {
    const tty = streams(true);
    const json = createOutput({ logFormat: 'json' }, tty.io);
    json.log('serving');
    json.logger('INFO').warn('sdk says', { workflowId: 'run/x/1' });
    const lines = tty.chunks.stderr
      .join('')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(lines.map((l) => [l['level'], l['message']])).toEqual([
      ['info', 'serving'],
      ['warn', 'sdk says'],
    ]);
    expect(lines[1]!['workflowId']).toBe('run/x/1');

    const piped = streams(false);
    const text = createOutput({ logFormat: 'text' }, piped.io);
    text.log('serving');
    text.logger('INFO').info('sdk says');
    expect(piped.chunks.stderr.join('')).toMatch(/^\d\d:\d\d:\d\d serving\n\d\d:\d\d:\d\d INFO  sdk says\n$/);
  });
});
