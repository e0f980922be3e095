/** Activities a runner serves on its pool's queues: reservations. */
import { failure } from '../src/failures';
import type { SlotPool } from '../src/runner/slots';
import type { RunnerSigner } from '../src/security/runner-signer';
import type { Reservation } from '../src/types';
import type { PoolActivities, ReservationAnswer, ReserveRequest } from './types';

export interface PoolActivityDeps {
  runner: string;
  /** The runner's own queue. */
  taskQueue: string;
  slots: SlotPool;
  /**
   * False for queues polled without a slot permit (a runner's pinned queues): the grant then
   * counts every outstanding permit as taken. Default true.
   */
  underPermit?: boolean;
  /** Signs each answer with the runner's identity signing key (`src/security/runner-proof.ts`). Default: unsigned. */
  signer?: RunnerSigner;
}

/** A run asks for many leases at once; one answer grants at most this many. */
const MAX_GRANT = 100;

export function createPoolActivities(deps: PoolActivityDeps): PoolActivities {
  return {
    async reserveSlots(req: ReserveRequest): Promise<ReservationAnswer> {
      const want = Math.max(1, Math.min(MAX_GRANT, Math.floor(req.want) || 1));
      // The worker polled under a permit, so normally at least one slot is free; a race with
      // leases granted meanwhile can leave none, and another runner (or a retry) answers.
      const leases = deps.slots.grant(want, { underPermit: deps.underPermit !== false });
      if (leases.length === 0) throw failure('NoFreeSlot', `runner "${deps.runner}" has no free slot`);
      const answer: Reservation = { runner: deps.runner, taskQueue: deps.taskQueue, leases };
      if (!deps.signer) return answer;
      const nonce = req.nonce ?? '';
      const proof = deps.signer.sign({ about: 'reservation', run: req.runId, nonce, ...answer });
      // What the proof covers besides the answer, and with which key: the run's worker verifies
      // it natively before the run sees it (src/codec/proof-check.ts).
      return {
        ...answer,
        proof,
        said: { about: 'reservation', run: req.runId, nonce, signer: deps.signer.publicKey },
      };
    },
  };
}
