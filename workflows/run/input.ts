/**
 * The run workflow's argument, checked where it enters: a direct `temporal workflow start` with a
 * bad spec, options, admission or restart fails the workflow at once with the field named.
 */
import { ApplicationFailure } from '@temporalio/workflow';
import { RunfleetError } from '../../src/errors';
import { runSchemas, type Restart, type RunOptions, type RunSpec } from '../../src/spec/schema';
import { validateRunOptions, validateRunSpec } from '../../src/spec/validate';
import { RUN_PATCH_GATES, runPatchGate, type RunPatchGate } from '../../src/run/patches';
import type { RunState } from '../../src/types';
import { carriedStateProblem } from '../start-checks';
import { describeError, describeValue } from './failures';

/** The workflow's argument, as `temporal workflow start --input` takes it. */
export interface RunInput {
  spec: unknown;
  options?: unknown;
  /** Set by `runfleet run restart`: the run restarted and the succeeded tasks it keeps. */
  restart?: unknown;
  /**
   * Set when a changegroup limits how many runs are active: the run stays `queued` until the
   * changegroup workflow (`changegroup/<name>`) sends `admit`, and sends it `release` when it ends.
   */
  admission?: { changegroup: string };
  /** Set by the run itself when it continues as new: where it was. */
  resume?: unknown;
  /**
   * The patch gate the run takes from its start (src/run/patches.ts), set by whoever starts it
   * (`RUN_PATCH_GATE`): it then asks no gate and records no marker. Without it the run asks.
   */
  patchGate?: unknown;
}

/** Where a run continued as new: its state (every task final, pending or lost) and admission. */
export interface RunResume {
  state: RunState;
  admitted: boolean;
}

export interface ParsedInput {
  spec: RunSpec;
  options: RunOptions;
  restart?: Restart;
  admission?: { changegroup: string };
  resume?: RunResume;
  /** The gate named by `patchGate`, when there is one. */
  gate?: RunPatchGate;
}

export function parseInput(input: unknown): ParsedInput {
  try {
    const { RunInputSchema, AdmissionSchema, RestartSchema } = runSchemas();
    const parsed = RunInputSchema.safeParse(input);
    if (!parsed.success) {
      throw new RunfleetError(
        'InvalidWorkflowInput',
        'runWorkflow takes one argument {"spec": <run spec>, "options"?: {...}}; got ' + describeValue(input),
      );
    }
    const gate = parseGate(parsed.data.patchGate);
    const spec = validateRunSpec(parsed.data.spec);
    const options = validateRunOptions(parsed.data.options);
    let admission: ParsedInput['admission'];
    if (parsed.data.admission !== undefined) {
      const a = AdmissionSchema.safeParse(parsed.data.admission);
      if (!a.success)
        throw new RunfleetError('InvalidWorkflowInput', 'invalid admission: {"changegroup": "<name>"} expected');
      admission = a.data;
    }
    // Forged task states, an admission it never had: refused (workflows/start-checks.ts).
    const carried = carriedStateProblem('resume', parsed.data.resume, 'run');
    if (carried) throw new RunfleetError('InvalidWorkflowInput', carried);
    const resume = parsed.data.resume as RunResume | undefined;
    if (parsed.data.restart === undefined) return { spec, options, admission, resume, gate };
    const restart = RestartSchema.safeParse(parsed.data.restart);
    if (!restart.success) {
      throw new RunfleetError(
        'InvalidWorkflowInput',
        `invalid restart: ${restart.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`,
      );
    }
    const unknown = Object.keys(restart.data.keep).filter((name) => !spec.tasks.some((t) => t.name === name));
    if (unknown.length > 0) {
      throw new RunfleetError(
        'InvalidWorkflowInput',
        `invalid restart: kept tasks not in the spec: ${unknown.join(', ')}`,
      );
    }
    return { spec, options, restart: restart.data, admission, resume, gate };
  } catch (err) {
    // Bad input fails the workflow at once; a workflow task retrying forever helps nobody.
    if (err instanceof RunfleetError) {
      throw ApplicationFailure.create({
        type: err.code,
        message: err.message,
        nonRetryable: true,
        details: [err.details ?? null],
      });
    }
    throw ApplicationFailure.create({ type: 'InvalidWorkflowInput', message: describeError(err), nonRetryable: true });
  }
}

/**
 * `patchGate`: a gate this code knows, or nothing. A gate it does not know (a newer client than
 * this worker) is refused rather than guessed: which patches it covers decides what the run does.
 */
function parseGate(value: unknown): RunPatchGate | undefined {
  if (value === undefined) return undefined;
  const gate = typeof value === 'string' ? runPatchGate(value) : undefined;
  if (gate) return gate;
  throw new RunfleetError(
    'InvalidWorkflowInput',
    `invalid patchGate: ${describeValue(value)} is not a gate this worker knows ` +
      `(${RUN_PATCH_GATES.map((g) => g.name).join(', ')}); leave it out to have the run ask`,
  );
}
