/**
 * Whether a process runs: it exists and has not exited. A zombie (exited, not yet reaped by its
 * parent, which may be an init that never does) counts as gone.
 */
import { readFileSync } from 'node:fs';

export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return !/^State:\s+Z/m.test(readFileSync(`/proc/${pid}/status`, 'utf8'));
  } catch {
    return false;
  }
}
