/**
 * Five-field cron expressions (minute hour day-of-month month day-of-week), checked before a
 * schedule is created so a mistake names its field instead of coming back as a server error.
 * Temporal evaluates the expression; this only validates it and gives its values.
 */
import { RunfleetError } from '../errors';

export interface CronField {
  name: 'minute' | 'hour' | 'day-of-month' | 'month' | 'day-of-week';
  min: number;
  max: number;
  names?: readonly string[];
}

export const CRON_FIELDS: readonly CronField[] = [
  { name: 'minute', min: 0, max: 59 },
  { name: 'hour', min: 0, max: 23 },
  { name: 'day-of-month', min: 1, max: 31 },
  {
    name: 'month',
    min: 1,
    max: 12,
    names: ['JAN', 'FEB', 'MAR', 'APR', 'MAY', 'JUN', 'JUL', 'AUG', 'SEP', 'OCT', 'NOV', 'DEC'],
  },
  { name: 'day-of-week', min: 0, max: 6, names: ['SUN', 'MON', 'TUE', 'WED', 'THU', 'FRI', 'SAT'] },
];

/** Macros Temporal accepts, as the five fields they stand for. */
const MACROS: Record<string, string> = {
  '@yearly': '0 0 1 1 *',
  '@annually': '0 0 1 1 *',
  '@monthly': '0 0 1 * *',
  '@weekly': '0 0 * * 0',
  '@daily': '0 0 * * *',
  '@midnight': '0 0 * * *',
  '@hourly': '0 * * * *',
};

/** A parsed expression: the sorted values of each field. */
export interface ParsedCron {
  /** The five fields as written (a macro expanded). */
  fields: string[];
  minute: number[];
  hour: number[];
  dayOfMonth: number[];
  month: number[];
  dayOfWeek: number[];
}

/** Parses a cron expression; a problem is `InvalidArgument` naming the field (`cron: minute field '61' ...`). */
export function parseCron(expression: string): ParsedCron {
  const trimmed = expression.trim();
  const expanded = MACROS[trimmed.toLowerCase()] ?? trimmed;
  if (expanded.startsWith('@')) {
    throw invalid(`unknown macro '${trimmed}'; use ${Object.keys(MACROS).join(', ')} or five fields`);
  }
  const fields = expanded.split(/\s+/).filter((f) => f.length > 0);
  if (fields.length !== 5) {
    throw invalid(
      `'${trimmed}' has ${fields.length} field${fields.length === 1 ? '' : 's'}; expected 5: minute hour day-of-month month day-of-week`,
    );
  }
  const values = fields.map((text, i) => parseField(text, CRON_FIELDS[i] as CronField));
  return {
    fields,
    minute: values[0] as number[],
    hour: values[1] as number[],
    dayOfMonth: values[2] as number[],
    month: values[3] as number[],
    dayOfWeek: values[4] as number[],
  };
}

function parseField(text: string, field: CronField): number[] {
  const out = new Set<number>();
  for (const part of text.split(',')) {
    if (part === '') throw invalid(`${field.name} field '${text}' has an empty list item`);
    const [range, stepText, extra] = part.split('/');
    if (extra !== undefined) throw invalid(`${field.name} field '${part}' has more than one '/'`);
    let step = 1;
    if (stepText !== undefined) {
      if (!/^\d+$/.test(stepText) || Number(stepText) === 0) {
        throw invalid(`${field.name} field '${part}': the step '${stepText}' must be a whole number above 0`);
      }
      step = Number(stepText);
    }
    let lo: number;
    let hi: number;
    if (range === '*' || (range === '?' && (field.name === 'day-of-month' || field.name === 'day-of-week'))) {
      lo = field.min;
      hi = field.max;
    } else {
      const bounds = (range ?? '').split('-');
      if (bounds.length > 2) throw invalid(`${field.name} field '${part}' is not a value or a range a-b`);
      lo = value(bounds[0] ?? '', field);
      // `5/15` means from 5 to the end, every 15.
      hi = bounds[1] !== undefined ? value(bounds[1], field) : stepText !== undefined ? field.max : lo;
      if (lo > hi) throw invalid(`${field.name} field '${part}': the range runs backwards`);
    }
    for (let v = lo; v <= hi; v += step) out.add(v);
  }
  return [...out].sort((a, b) => a - b);
}

function value(text: string, field: CronField): number {
  const upper = text.toUpperCase();
  const named = field.names?.indexOf(upper) ?? -1;
  if (named >= 0) return named + field.min;
  if (!/^\d+$/.test(text)) {
    const names = field.names ? ` or ${field.names[0]}-${field.names[field.names.length - 1]}` : '';
    throw invalid(`${field.name} field '${text}' is not a number${names}`);
  }
  const n = Number(text);
  if (n < field.min || n > field.max) {
    throw invalid(`${field.name} field '${text}' is out of range ${field.min}-${field.max}`);
  }
  return n;
}

function invalid(message: string): RunfleetError {
  return new RunfleetError('InvalidArgument', `cron: ${message}`);
}

/** Checks an IANA time zone name (`Europe/Berlin`, `UTC`) as Temporal will read it. */
export function checkTimezone(tz: string): string {
  try {
    new Intl.DateTimeFormat('en-US', { timeZone: tz });
  } catch {
    throw new RunfleetError(
      'InvalidArgument',
      `timezone '${tz}' is not an IANA time zone name (like UTC or Europe/Berlin)`,
    );
  }
  return tz;
}
