/**
 * Fleet files: YAML or JSON on disk, parsed and validated before anything is sent. Every error is
 * an `InvalidConfig` naming the file and listing every problem. Node-only (not for workflows).
 */
import { RunfleetError } from '../errors';
import { parseYamlText, readUserFile } from '../structured-file';
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
  const { file, text } = await readUserFile(path, 'fleet file', 'InvalidConfig');
  const parsed = parseYamlText(text);
  if (parsed.problems.length > 0) {
    throw new RunfleetError('InvalidConfig', formatProblems(`invalid fleet file ${path}`, parsed.problems), {
      file,
      problems: parsed.problems,
    });
  }
  const input = parsed.value;
  const checked = checkFleetSpec(input);
  if (!checked.ok) {
    throw new RunfleetError('InvalidConfig', formatProblems(`invalid fleet file ${path}`, checked.problems), {
      file,
      problems: checked.problems,
    });
  }
  return { file, input, spec: checked.spec };
}
