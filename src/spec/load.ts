/**
 * Run files: YAML or JSON on disk, parsed and validated before anything starts. Every error is
 * a RunfleetError `InvalidRunSpec` whose message names the file and lists every problem.
 */
import { extname } from 'node:path';
import { RunfleetError } from '../errors';
import { parseJsonText, parseYamlText, readUserFile } from '../structured-file';
import type { RunSpec } from './schema';
import { checkRunSpec, formatProblems, type SpecProblem } from './validate';

export interface LoadedRunSpec {
  /** Absolute path of the file read. */
  file: string;
  /** The file's content as parsed, before defaults: what is sent to the workflow. */
  input: unknown;
  /** The validated spec, with defaults filled in. */
  spec: RunSpec;
}

/** Reads, parses and validates a run file (`.yaml`/`.yml`, `.json`, or either by content). */
export async function loadRunSpecFile(path: string): Promise<LoadedRunSpec> {
  const { file, text } = await readUserFile(path, 'run file', 'InvalidRunSpec');
  const input = parseRunFileText(text, file);
  const checked = checkRunSpec(input);
  if (!checked.ok) {
    throw new RunfleetError('InvalidRunSpec', formatProblems(`invalid run file ${path}`, checked.problems), {
      file,
      problems: checked.problems,
    });
  }
  return { file, input, spec: checked.spec };
}

/** Parses a run file's text by the file's extension, or as JSON then YAML when it has none. */
export function parseRunFileText(text: string, file: string): unknown {
  const ext = extname(file).toLowerCase();
  if (ext === '.json') return parseJson(text, file);
  if (ext === '.yaml' || ext === '.yml') return parseYaml(text, file);
  const json = parseJsonText(text);
  // Not JSON: YAML is a superset, so its error is the one worth showing.
  return json.problems.length > 0 ? parseYaml(text, file) : json.value;
}

function parseJson(text: string, file: string): unknown {
  const parsed = parseJsonText(text);
  if (parsed.problems.length > 0) throw syntaxError(file, parsed.problems);
  return parsed.value;
}

function parseYaml(text: string, file: string): unknown {
  const parsed = parseYamlText(text);
  if (parsed.problems.length > 0) throw syntaxError(file, parsed.problems);
  return parsed.value;
}

function syntaxError(file: string, problems: SpecProblem[]): RunfleetError {
  return new RunfleetError('InvalidRunSpec', formatProblems(`cannot parse run file ${file}`, problems), {
    file,
    problems,
  });
}
