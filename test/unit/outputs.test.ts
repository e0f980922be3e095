/** Task outputs (`src/run/outputs.ts`): the file's format, its limits, the variables dependents get. */
import { describe, expect, it } from 'vitest';
import { OUTPUT_LIMITS, needsEnv, outputsProblem, parseOutputs } from '../../src/run/outputs';

describe('task outputs', () => {
  it('reads KEY=value lines: blank lines skipped, "=" inside a value kept, a later key wins', () => {
    expect(parseOutputs('version=1.2.3\n\nurl=https://x/?a=b\r\nversion=1.2.4\n')).toEqual({
      outputs: { version: '1.2.4', url: 'https://x/?a=b' },
    });
    expect(parseOutputs('')).toEqual({ outputs: {} });
  });

  it('refuses a line that is not KEY=value, a bad key, too many keys, too many bytes, naming the problem', () => {
    expect(parseOutputs('ok=1\njust text\n')).toEqual({ problem: 'line 2 is not KEY=value' });
    expect(parseOutputs('=x')).toEqual({ problem: 'line 1 is not KEY=value' });
    expect(parseOutputs('1abc=x')).toEqual({
      problem: 'key "1abc" is not 1-64 letters, digits and "_" (not starting with a digit)',
    });
    const many = Array.from({ length: OUTPUT_LIMITS.maxKeys + 1 }, (_, i) => `k${i}=v`).join('\n');
    expect(parseOutputs(many)).toEqual({ problem: `17 keys; a task has at most ${OUTPUT_LIMITS.maxKeys}` });
    expect(parseOutputs(`big=${'é'.repeat(510)}`)).toEqual({ outputs: { big: 'é'.repeat(510) } }); // 1023 bytes
    expect(parseOutputs(`big=${'é'.repeat(511)}`)).toEqual({
      problem: "1025 bytes; a task's outputs are at most 1024",
    });
  });

  it("checks a runner's claim the same way (a compromised runner is bounded like a task)", () => {
    expect(outputsProblem({ a: '1' })).toBeNull();
    expect(outputsProblem(['a'])).toBe('outputs are not key-values');
    expect(outputsProblem({ a: 1 })).toBe('the value of a is not text');
    expect(outputsProblem({ a: 'x\u0000y' })).toBe('the value of a holds a NUL character');
    expect(outputsProblem(JSON.parse('{"__proto__": "x"}'))).toBe('key "__proto__" is not allowed');
    expect(parseOutputs('__proto__=x')).toEqual({ problem: 'key "__proto__" is not allowed' });
  });

  it('gives dependents RUNFLEET_NEEDS_<TASK>_<KEY>, any task name made a variable name', () => {
    expect(needsEnv({ build: { version: '1.2.3' }, 'test (node=20)': { report: 'r.xml' } })).toEqual({
      RUNFLEET_NEEDS_BUILD_VERSION: '1.2.3',
      RUNFLEET_NEEDS_TEST__NODE_20__REPORT: 'r.xml',
    });
  });
});
