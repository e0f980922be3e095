/**
 * The data converter of every Runfleet client and worker: Runfleet's payload converter (key
 * deliveries and runners' execution statements marked, see payload-converter.ts), then the proof
 * codec, compression and encryption. The SDK runs codecs in array order to encode and in reverse
 * to decode, so payloads are compressed before they are encrypted (ciphertext does not compress),
 * decrypted before they are decompressed, and the proof codec sees a payload last, in clear.
 */
import { extname, join } from 'node:path';
import type { DataConverter } from '@temporalio/common';
import { CompressionCodec } from './compression';
import { EncryptionCodec } from './encryption';
import { KeyRing } from './keys';
import { ProofCheckCodec } from './proof-check';

/**
 * Workers and the workflow bundle load the payload converter by path. Beside this file with its
 * extension (`.ts` under tsx and vitest, `.js` when compiled): `require.resolve` does not look for
 * `.ts` under vitest.
 */
export const PAYLOAD_CONVERTER_PATH = join(__dirname, `payload-converter${extname(__filename)}`);

/**
 * The workflow interceptor modules every worker and bundle registers: workflows/key-scope.ts
 * marks activity arguments sent to pools and runners with their data-key scope;
 * workflows/trace-context.ts carries the run's trace context to its activities.
 */
export const WORKFLOW_INTERCEPTOR_MODULES = [
  join(__dirname, '..', '..', 'workflows', `key-scope${extname(__filename)}`),
  join(__dirname, '..', '..', 'workflows', `trace-context${extname(__filename)}`),
];

/**
 * Modules a worker thread loads once and shares among its workflows (the bundler's
 * `preloadModules`): a worker otherwise loads each module again for every workflow it starts.
 * Only pure code whose module-level state is a cache of values derived from its inputs, and
 * whose exports stay usable deep-frozen (the SDK freezes them, and what they import):
 * - the Ed25519 check of runner proofs (@noble/curves builds a 4,096-point table of the base
 *   point on its first use, and `ed25519-verify.ts` keeps each runner key's table), so a small
 *   run no longer pays tens of milliseconds to check its first proof;
 * - the run spec's schemas (`src/spec/schema.ts`, and zod with them): building them was about a
 *   tenth of the control worker's CPU with one-task runs. The module exports no schema, only
 *   `runSchemas()` (a frozen zod schema cannot build its methods on first use);
 * - `workflows/stack-trace-limit.ts`, which sets the sandbox's `Error.stackTraceLimit` before the
 *   SDK freezes `Error` (a module loaded later cannot).
 */
export const WORKFLOW_PRELOAD_MODULES = [
  join(__dirname, '..', 'security', `ed25519-verify${extname(__filename)}`),
  join(__dirname, '..', 'spec', `schema${extname(__filename)}`),
  join(__dirname, '..', '..', 'workflows', `stack-trace-limit${extname(__filename)}`),
];

/** What every bundle of Runfleet's workflows is built with (`bundleWorkflowCode` options). */
export const WORKFLOW_BUNDLE_OPTIONS = {
  payloadConverterPath: PAYLOAD_CONVERTER_PATH,
  workflowInterceptorModules: WORKFLOW_INTERCEPTOR_MODULES,
  preloadModules: WORKFLOW_PRELOAD_MODULES,
};

/**
 * Workers `require()` the payload converter by path, outside any transform of the process's own
 * loader (vitest's, say): when Runfleet runs from its TypeScript sources, let Node's `require`
 * load `.ts` as `bin/runfleet` does (tsx). Compiled code needs nothing.
 */
let tsxRegistered = false;
function loadableByPath(): void {
  if (tsxRegistered || extname(__filename) !== '.ts') return;
  tsxRegistered = true;
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  (require('tsx/cjs/api') as { register(): unknown }).register();
}

export interface DataConverterOptions {
  /** Data keys; without them (or with an empty ring) payloads are compressed only. */
  keys?: KeyRing;
  /** A runner's: refuse payloads in clear once it holds keys (`EncryptionCodecOptions`). */
  refusePlaintext?: boolean;
}

export function createDataConverter(opts: DataConverterOptions = {}): DataConverter {
  loadableByPath();
  return {
    payloadConverterPath: PAYLOAD_CONVERTER_PATH,
    payloadCodecs: [
      new ProofCheckCodec(),
      new CompressionCodec(),
      new EncryptionCodec(opts.keys ?? new KeyRing(), { refusePlaintext: opts.refusePlaintext === true }),
    ],
  };
}

export { CompressionCodec } from './compression';
export { ProofCheckCodec } from './proof-check';
export { EncryptionCodec, ENCRYPTED_ENCODING, KEY_ID_METADATA } from './encryption';
export {
  KeyRing,
  createKeyFile,
  deriveScopedKey,
  scopeOfKeyId,
  scopedKeyId,
  loadKeyRing,
  newDataKey,
  noKeysWarning,
  readKeyFile,
  type DataKey,
} from './keys';
export {
  KEY_DELIVERY_ENCODING,
  KEY_DELIVERY_KIND,
  KEY_SCOPE_METADATA,
  PROOF_CHECKED_METADATA,
  RUNNER_STATEMENT_METADATA,
  payloadConverter,
  proofChecked,
  scopedValue,
} from './payload-converter';
export { generateIdentity, openKeys, openSealed, sealFor, sealKeys, type Identity } from './seal';
