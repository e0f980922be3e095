/**
 * The JSON Schema of a run file, generated from the zod schema (the input side: what people
 * write, before defaults). Editors use it for completion: `# yaml-language-server: $schema=...`.
 */
import { z } from 'zod';
import { runSchemas } from './schema';

export function runSpecJsonSchema(): Record<string, unknown> {
  const { RunSpecSchema } = runSchemas();
  const schema = z.toJSONSchema(RunSpecSchema, { io: 'input', unrepresentable: 'any' }) as Record<string, unknown>;
  return {
    $schema: 'https://json-schema.org/draft/2020-12/schema',
    title: 'Runfleet run file',
    description: 'A run: a named group of tasks with dependencies, submitted with `runfleet run submit FILE`.',
    ...schema,
  };
}
