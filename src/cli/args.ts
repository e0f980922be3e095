/** Parsers for flag values: a bad value is a usage error (exit 2) naming the flag. */
import { InvalidArgumentError } from 'commander';
import { DRIVERS, type DriverName } from '../types';

export function integer(min: number, max: number): (value: string) => number {
  return (value) => {
    if (!/^\d+$/.test(value.trim())) throw new InvalidArgumentError(`expected a whole number from ${min} to ${max}.`);
    const n = Number(value);
    if (n < min || n > max) throw new InvalidArgumentError(`expected a whole number from ${min} to ${max}.`);
    return n;
  };
}

export const port = integer(1, 65535);

/** `host:port` (a Temporal frontend): a name or address and a port of 1-65535. */
export function hostPort(value: string): string {
  const m = /^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]+):(\d{1,5})$/.exec(value.trim());
  const p = Number(m?.[2]);
  if (!m || p < 1 || p > 65535) throw new InvalidArgumentError('expected host:port, like temporal.example.com:7233.');
  return value.trim();
}

/** `--drivers process,kubernetes`: each a driver this runner can offer, else the flag is refused. */
export function driverList(value: string): DriverName[] {
  const names = value
    .split(',')
    .map((n) => n.trim())
    .filter((n) => n !== '');
  const unknown = names.filter((n) => !(DRIVERS as readonly string[]).includes(n));
  if (names.length === 0 || unknown.length > 0) {
    throw new InvalidArgumentError(
      `${unknown.length > 0 ? `unknown driver ${unknown.map((n) => JSON.stringify(n)).join(', ')}` : 'no driver named'}: each is one of ${DRIVERS.join(', ')}`,
    );
  }
  return [...new Set(names)] as DriverName[];
}
