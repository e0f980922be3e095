/**
 * Everything the CLI shows goes through here: results (text, or JSON with `--json`), progress
 * lines, live redraws on a terminal, errors, and the log lines of foreground processes. This is
 * the only module that writes to the terminal.
 *
 * Text for people has its control characters escaped (`escapeControl`): names, runner strings and
 * reasons come from run authors and runner hosts, and must not drive the terminal. `--json` output
 * is JSON.stringify's, exact (it escapes them itself); task logs (`write`) pass as they are.
 */
import type { LogLevel, LogMetadata, Logger } from '@temporalio/common';
import type { LogFields } from '../logging';
import { escapeControl } from './render';

export interface Output {
  /** `--json`: results are JSON on stdout; people-lines go to stderr so stdout stays parseable. */
  readonly json: boolean;
  /** stdout is a terminal and results are text: live redraws are possible. */
  readonly interactive: boolean;
  /** A command's result: `value` as JSON with `--json`, else `text()`. */
  result(value: unknown, text: () => string): void;
  /** A line for people (progress, hints). */
  line(text: string): void;
  /** Raw bytes (task logs) to stdout, as they are. */
  write(chunk: string): void;
  /** Replaces the block drawn by the previous `live` call (terminal only). */
  live(lines: string[]): void;
  /** Leaves the live block on screen; later lines print below it. */
  endLive(): void;
  /** An error for people, on stderr. */
  error(text: string): void;
  /**
   * A progress line of a foreground process (server, workers), on stderr: with a time as text, or
   * a JSON object with `fields` (see `logFormat`).
   */
  log(line: string, fields?: LogFields): void;
  /** A Temporal SDK logger writing to stderr, in the same format as `log`. */
  logger(level: LogLevel): Logger;
}

export interface OutputStreams {
  stdout: NodeJS.WriteStream;
  stderr: NodeJS.WriteStream;
}

const LEVELS: LogLevel[] = ['TRACE', 'DEBUG', 'INFO', 'WARN', 'ERROR'];
/**
 * SDK warnings that describe Runfleet's design, not a problem: a runner's workers serve only
 * activities, so the SDK says they poll no workflow tasks (and the control worker no activities).
 */
const EXPECTED_WARNINGS = /^No (workflows|activities) registered, not polling/;

export function createOutput(
  opts: { json?: boolean; logFormat?: 'auto' | 'text' | 'json' } = {},
  streams: OutputStreams = { stdout: process.stdout, stderr: process.stderr },
): Output {
  const json = opts.json ?? false;
  const { stdout, stderr } = streams;
  // Log lines (`log`, `logger`): JSON for a log pipeline, text for people at a terminal.
  const logJson = opts.logFormat === 'json' || (opts.logFormat !== 'text' && stderr.isTTY !== true);
  const interactive = !json && stdout.isTTY === true;
  let liveHeight = 0;

  const people = json ? stderr : stdout;
  const println = (stream: NodeJS.WriteStream, raw: string) => {
    const text = escapeControl(raw);
    stream.write(text.endsWith('\n') ? text : text + '\n');
  };

  return {
    json,
    interactive,
    result(value, text) {
      // JSON escapes control characters itself, and must reach scripts exactly as it is.
      if (json) void stdout.write(JSON.stringify(value, null, 2) + '\n');
      else println(stdout, text());
    },
    line(text) {
      println(people, text);
    },
    write(chunk) {
      stdout.write(chunk);
    },
    live(lines) {
      if (!interactive) {
        for (const l of lines) println(stdout, l);
        return;
      }
      // Move up over the previous block, clear to the end of the screen, draw again.
      let text = liveHeight > 0 ? `\x1b[${liveHeight}F\x1b[0J` : '';
      const width = stdout.columns ?? 120;
      text +=
        lines
          .map(escapeControl)
          .map((l) => (l.length > width ? l.slice(0, width - 1) + '…' : l))
          .join('\n') + '\n';
      stdout.write(text);
      liveHeight = lines.length;
    },
    endLive() {
      liveHeight = 0;
    },
    error(text) {
      println(stderr, text);
    },
    log(line, fields) {
      if (logJson)
        println(stderr, JSON.stringify({ time: new Date().toISOString(), level: 'info', message: line, ...fields }));
      else println(stderr, `${clock()} ${line}`);
    },
    logger(level) {
      const min = LEVELS.indexOf(level);
      const asJson = logJson;
      const log = (lvl: LogLevel, message: string, fullMeta?: LogMetadata) => {
        if (LEVELS.indexOf(lvl) < min || EXPECTED_WARNINGS.test(message)) return;
        // An activity's task token completes it for whoever holds it: it never goes into a log.
        const { taskToken: _taskToken, ...meta } = fullMeta ?? {};
        if (asJson) {
          println(
            stderr,
            JSON.stringify({ time: new Date().toISOString(), level: lvl.toLowerCase(), message, ...meta }, jsonSafe),
          );
        } else {
          const extra = meta && Object.keys(meta).length > 0 ? ' ' + JSON.stringify(meta, jsonSafe) : '';
          println(stderr, `${clock()} ${lvl.padEnd(5)} ${message}${extra}`);
        }
      };
      return {
        log,
        trace: (m, meta) => log('TRACE', m, meta),
        debug: (m, meta) => log('DEBUG', m, meta),
        info: (m, meta) => log('INFO', m, meta),
        warn: (m, meta) => log('WARN', m, meta),
        error: (m, meta) => log('ERROR', m, meta),
      };
    },
  };
}

function clock(): string {
  return new Date().toTimeString().slice(0, 8);
}

/** SDK log metadata may hold bigints and errors. */
function jsonSafe(_key: string, value: unknown): unknown {
  if (typeof value === 'bigint') return value.toString();
  if (value instanceof Error) return { name: value.name, message: value.message };
  return value;
}
