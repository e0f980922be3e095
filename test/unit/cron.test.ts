/** Cron expressions checked before a schedule is created: errors name the field. */
import { describe, expect, it } from 'vitest';
import { checkTimezone, parseCron } from '../../src/runner/cron';
import { RunfleetError } from '../../src/errors';

function message(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(RunfleetError);
    expect((err as RunfleetError).code).toBe('InvalidArgument');
    return (err as Error).message;
  }
  throw new Error('expected an error');
}

describe('parseCron', () => {
  it('expands stars, ranges, lists, steps and names', () => {
    const every = parseCron('* * * * *');
    expect(every.minute).toHaveLength(60);
    expect(every.hour).toHaveLength(24);
    expect(every.dayOfMonth[0]).toBe(1);
    expect(every.dayOfWeek).toEqual([0, 1, 2, 3, 4, 5, 6]);

    const c = parseCron('*/15 9-17/4 1,15 JAN-mar mon-fri');
    expect(c.minute).toEqual([0, 15, 30, 45]);
    expect(c.hour).toEqual([9, 13, 17]);
    expect(c.dayOfMonth).toEqual([1, 15]);
    expect(c.month).toEqual([1, 2, 3]);
    expect(c.dayOfWeek).toEqual([1, 2, 3, 4, 5]);

    expect(parseCron('5/20 0 ? * 0').minute).toEqual([5, 25, 45]);
    expect(parseCron('  0  3 * * SUN ').fields).toEqual(['0', '3', '*', '*', 'SUN']);
  });

  it('takes the macros Temporal takes', () => {
    expect(parseCron('@daily').fields).toEqual(['0', '0', '*', '*', '*']);
    expect(parseCron('@hourly').minute).toEqual([0]);
    expect(message(() => parseCron('@sometimes'))).toMatch(/^cron: unknown macro '@sometimes'/);
  });

  it('names the field and the problem', () => {
    expect(message(() => parseCron('61 * * * *'))).toBe("cron: minute field '61' is out of range 0-59");
    expect(message(() => parseCron('0 24 * * *'))).toBe("cron: hour field '24' is out of range 0-23");
    expect(message(() => parseCron('0 0 0 * *'))).toBe("cron: day-of-month field '0' is out of range 1-31");
    expect(message(() => parseCron('0 0 * 13 *'))).toBe("cron: month field '13' is out of range 1-12");
    expect(message(() => parseCron('0 0 * * 7'))).toBe("cron: day-of-week field '7' is out of range 0-6");
    expect(message(() => parseCron('0 0 * FOO *'))).toBe("cron: month field 'FOO' is not a number or JAN-DEC");
    expect(message(() => parseCron('*/0 * * * *'))).toMatch(/^cron: minute field '\*\/0': the step '0'/);
    expect(message(() => parseCron('30-10 * * * *'))).toMatch(/^cron: minute field '30-10': the range runs backwards/);
    expect(message(() => parseCron('1,,2 * * * *'))).toMatch(/empty list item/);
    expect(message(() => parseCron('? * * * *'))).toBe("cron: minute field '?' is not a number");
  });

  it('wants exactly five fields', () => {
    expect(message(() => parseCron('* * * *'))).toMatch(/^cron: '\* \* \* \*' has 4 fields; expected 5/);
    expect(message(() => parseCron('0 * * * * *'))).toMatch(/has 6 fields/);
    expect(message(() => parseCron(''))).toMatch(/has 0 fields/);
  });
});

describe('checkTimezone', () => {
  it('takes IANA names and refuses others', () => {
    expect(checkTimezone('UTC')).toBe('UTC');
    expect(checkTimezone('Europe/Berlin')).toBe('Europe/Berlin');
    expect(message(() => checkTimezone('Mars/Olympus'))).toMatch(
      /^timezone 'Mars\/Olympus' is not an IANA time zone name/,
    );
  });
});
