/**
 * Fleet files: YAML or JSON on disk, parsed and validated before anything is sent. Every error is
 * an `InvalidConfig` naming the file and listing every problem. Node-only (not for workflows).
 */
import { readFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import { parseDocument } from 'yaml';
import { RunfleetError } from '../errors';
import { formatProblems } from '../spec/validate';
import type { FleetSpec } from './schema';
import { checkFleetSpec } from './validate';

export interface LoadedFleetSpec {
  file: string;
  /** The file's content as parsed, before defaults: what is sent to the fleet workflow. */
  input: unknown;
  spec: FleetSpec;
}

export async function loadFleetSpecFile(path: string): Promise<LoadedFleetSpec> {
  const file = resolve(path);
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new RunfleetError(
      'InvalidConfig',
      `cannot read fleet file ${path}: ${code === 'ENOENT' ? 'no such file' : (err as Error).message}`,
    );
  }
  // YAML is a superset of JSON: one parser for both.
  const doc = parseDocument(text, { prettyErrors: true, uniqueKeys: true });
  if (doc.errors.length > 0) {
    const problems = doc.errors.map((e) => {
      const at = e.linePos?.[0];
      return {
        path: at ? `line ${at.line}, column ${at.col}` : '(file)',
        message: `YAML: ${(e.message.split('\n')[0] ?? '').replace(/ at line \d+, column \d+:?$/, '')}`,
      };
    });
    throw new RunfleetError('InvalidConfig', formatProblems(`invalid fleet file ${path}`, problems), {
      file,
      problems,
    });
  }
  const input = doc.toJS() as unknown;
  const checked = checkFleetSpec(input);
  if (!checked.ok) {
    throw new RunfleetError('InvalidConfig', formatProblems(`invalid fleet file ${path}`, checked.problems), {
      file,
      problems: checked.problems,
    });
  }
  return { file, input, spec: checked.spec };
}
