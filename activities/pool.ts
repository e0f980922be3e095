/** Activities a runner serves on its pool's queue: reservations. */
import { failure } from '../src/errors';
import type { SlotPool } from '../src/runner/slots';
import type { DriverName, Reservation } from '../src/types';
import type { PoolActivities, ReserveRequest } from './types';

export interface PoolActivityDeps {
  runner: string;
  taskQueue: string;
  drivers: DriverName[];
  slots: SlotPool;
}

export function createPoolActivities(deps: PoolActivityDeps): PoolActivities {
  return {
    async reserveSlot(req: ReserveRequest): Promise<Reservation> {
      if (!deps.drivers.includes(req.driver)) {
        throw failure(
          'DriverUnavailable',
          `runner "${deps.runner}" offers the drivers ${deps.drivers.join(', ')}; task "${req.task}" needs "${req.driver}"`,
        );
      }
      // The worker polled under a permit, so a slot is free; hold it for the task.
      const reservationId = deps.slots.reserve();
      return { reservationId, runner: deps.runner, taskQueue: deps.taskQueue, drivers: deps.drivers };
    },
  };
}
