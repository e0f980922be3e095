/**
 * What a log line of Runfleet's own says besides its text: the run, task, attempt and runner it
 * is about, where they apply. Printed as fields of a JSON line (`log.format`, docs/operating.md),
 * so a log pipeline can filter one run's or one runner's lines without parsing the text.
 */
export interface LogFields {
  run?: string;
  task?: string;
  attempt?: number;
  runner?: string;
  pool?: string;
}

/** A log line sink of a long-running part (runner, agent, drivers, servers). */
export type LogLine = (line: string, fields?: LogFields) => void;

/** The fields of a task's labels (a session record's). */
export function taskFields(labels: {
  run: string;
  task: string;
  attempt: number;
  runner: string;
  pool?: string;
}): LogFields {
  return {
    run: labels.run,
    task: labels.task,
    attempt: labels.attempt,
    runner: labels.runner,
    ...(labels.pool ? { pool: labels.pool } : {}),
  };
}
