/** The RunfleetError `fn` throws; fails the test when it throws nothing or something else. */
import { RunfleetError } from '../../src/errors';

export function refusal(fn: () => unknown): RunfleetError {
  try {
    fn();
  } catch (err) {
    if (err instanceof RunfleetError) return err;
    throw err;
  }
  throw new Error('expected a RunfleetError, nothing was thrown');
}
