/**
 * The registry's activities, served by the control worker (the only workers holding the data
 * keys): seal every data key for a registering or connecting runner's public key.
 */
import type { KeyRing } from '../src/codec/keys';
import { sealKeys } from '../src/codec/seal';
import { asFailure } from '../src/errors';
import type { RegistryActivities } from './types';

export interface RegistryActivityDeps {
  keys: KeyRing;
}

export function createRegistryActivities(deps: RegistryActivityDeps): RegistryActivities {
  return {
    async sealDataKeys({ publicKey }) {
      try {
        // An empty ring seals nothing: the runner then works in clear, like everyone else.
        return sealKeys(deps.keys, publicKey);
      } catch (err) {
        throw asFailure(err);
      }
    },
  };
}
