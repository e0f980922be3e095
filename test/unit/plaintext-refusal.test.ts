/**
 * A worker without data keys refuses to start unless payloads are allowed in clear (issue 10,
 * item 7: workers used to start keyless with a warning only).
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { workerDataConverter } from '../../src/cli/runtime';
import { createOutput } from '../../src/cli/output';
import { createKeyFile } from '../../src/codec';
import { loadConfig } from '../../src/config';

function capture() {
  const lines: string[] = [];
  const stream = { write: (t: string) => void lines.push(t), isTTY: false } as unknown as NodeJS.WriteStream;
  return { out: createOutput({}, { stdout: stream, stderr: stream }), lines };
}

describe('workers without data keys', () => {
  const dir = mkdtempSync(join(tmpdir(), 'rf-plain-'));
  const keyFile = join(dir, 'none', 'runfleet.keys');

  it('refuse to start by default, naming the key file and the way out', () => {
    const config = loadConfig({ cwd: dir, env: { RUNFLEET_KEY_FILE: keyFile } });
    const { out } = capture();
    let error: Error | undefined;
    try {
      workerDataConverter(config, out);
    } catch (err) {
      error = err as Error;
    }
    console.log(`keyless worker start: ${error?.message ?? 'started'}`);
    expect(error?.message).toContain(`no data keys at ${keyFile}`);
    expect(error?.message).toContain('runfleet keys create');
  });

  it('start with a warning when RUNFLEET_ALLOW_PLAINTEXT=1 says payloads may travel in clear', () => {
    const config = loadConfig({ cwd: dir, env: { RUNFLEET_KEY_FILE: keyFile, RUNFLEET_ALLOW_PLAINTEXT: '1' } });
    expect(config.encryption.allowPlaintext).toBe(true);
    const { out, lines } = capture();
    const { keys } = workerDataConverter(config, out);
    expect(keys.current()).toBeNull();
    expect(lines.join('')).toMatch(/warning: payloads are not encrypted/);
  });

  it('start silently with keys', () => {
    const withKeys = join(dir, 'keys', 'runfleet.keys');
    createKeyFile(withKeys);
    const config = loadConfig({ cwd: dir, env: { RUNFLEET_KEY_FILE: withKeys } });
    const { out, lines } = capture();
    expect(workerDataConverter(config, out).keys.current()).not.toBeNull();
    expect(lines).toEqual([]);
  });

  it('refuse a value of RUNFLEET_ALLOW_PLAINTEXT that is not a boolean, naming it', () => {
    expect(() => loadConfig({ cwd: dir, env: { RUNFLEET_ALLOW_PLAINTEXT: 'maybe' } })).toThrow(
      /RUNFLEET_ALLOW_PLAINTEXT/,
    );
  });
});
