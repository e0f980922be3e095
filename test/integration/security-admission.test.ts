/**
 * Admission the operator controls (issue 10, items 3 and 7), attacked on the real dev server with
 * the real control worker (`createControlWorker`, holding a data key and the suite's operator
 * public key). A client with namespace access but without the operator key tries to get the data
 * keys, to forge or alter grants, to replay signed commands, to issue long-lived tokens; and the
 * history of a registration is searched for the token. Each test prints what it tried and what
 * happened.
 */
import { WithStartWorkflowOperation, WorkflowUpdateFailedError, type WorkflowHandle } from '@temporalio/client';
import { ApplicationFailure } from '@temporalio/common';
import { randomBytes, randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { KeyRing, newDataKey } from '../../src/codec/keys';
import { generateIdentity, openKeys } from '../../src/codec/seal';
import type { RunnerAdmin } from '../../src/client/runners';
import { RunfleetError } from '../../src/errors';
import { WORKFLOW_TYPES, runnerWorkflowId } from '../../src/ids';
import { createRegistrationToken, tokenGrant } from '../../src/registry/token';
import { generateSigningKey, signStatement, type SigningKeyPair } from '../../src/security/operator';
import { operatorCommand, type OperatorAction } from '../../src/security/statements';
import {
  disableUpdate,
  issueTokenUpdate,
  purgeUpdate,
  recordQuery,
  type AdminRequest,
  type IssueTokenRequest,
  type RunnerRecord,
} from '../../workflows/runner-messages';
import { registerRequest, startHarness, testOperator, testRunnerAdmin, type Harness } from '../helpers/harness';
import { uniqueName } from '../helpers/temporal';

let h: Harness;
/** The operator: signs with the key the control worker trusts. */
let operator: RunnerAdmin;
const ring = new KeyRing([newDataKey()]);

beforeAll(async () => {
  h = await startHarness({ keys: ring });
  operator = testRunnerAdmin(h.client, h.controlQueue, h.address);
});

afterAll(async () => {
  await h?.stop();
});

/** A runner host's identity: X25519 for the sealed keys, Ed25519 for what it signs. */
function newHost() {
  const x = generateIdentity();
  return { runnerId: randomUUID(), publicKey: x.publicKey, privateKey: x.privateKey, signing: generateSigningKey() };
}

function registerAs(host: ReturnType<typeof newHost>, token: string, name: string) {
  return registerRequest(token, name, {
    runnerId: host.runnerId,
    publicKey: host.publicKey,
    signingKey: host.signing.publicKey,
  });
}

/** The code and message of a refusal, from the client library or a raw update. */
async function refusal(p: Promise<unknown>): Promise<{ code: string; message: string }> {
  try {
    await p;
  } catch (err) {
    if (err instanceof RunfleetError) return { code: err.code, message: err.message };
    const cause = err instanceof WorkflowUpdateFailedError ? err.cause : err;
    if (cause instanceof ApplicationFailure) return { code: cause.type ?? '', message: cause.message };
    throw err;
  }
  throw new Error('expected a refusal, and it was accepted');
}

function handle(name: string): WorkflowHandle {
  return h.client.workflow.getHandle(runnerWorkflowId(name));
}

/** A grant for `name` signed with `key` (the attacker's own key, or the operator's). */
function signedToken(
  key: SigningKeyPair,
  name: string,
  opts: { pool?: string; issuedAt?: number; expiresAt?: number } = {},
): { request: IssueTokenRequest; token: string } {
  const t = createRegistrationToken();
  const issuedAt = new Date(opts.issuedAt ?? Date.now()).toISOString();
  const expiresAt = new Date(opts.expiresAt ?? Date.now() + 3_600_000).toISOString();
  const grant = tokenGrant(
    { name, pool: opts.pool ?? 'linux', labels: {}, temporary: false, slots: 4 },
    t,
    issuedAt,
    expiresAt,
  );
  return {
    token: t.token,
    request: { tokenId: t.id, expiresAt, by: 'attacker', grant, signature: signStatement(key.seed, grant) },
  };
}

/** An operator command signed with the operator key, as `RunnerAdmin` signs it. */
function signedCommand(runner: string, action: OperatorAction, args: AdminRequest, at = Date.now()): AdminRequest {
  const sig = { at: new Date(at).toISOString(), nonce: randomBytes(16).toString('hex'), signature: '' };
  sig.signature = signStatement(testOperator().seed, operatorCommand(runner, action, args, sig));
  return { ...args, operator: sig };
}

/** The runner workflow's whole history, every payload decoded with the client's data converter. */
async function decodedHistory(name: string): Promise<string> {
  const history = await handle(name).fetchHistory();
  const { payloadCodecs, payloadConverter } = h.client.options.loadedDataConverter;
  const texts: string[] = [];
  const walk = async (v: unknown): Promise<void> => {
    if (v === null || typeof v !== 'object') return;
    const p = v as { data?: unknown; metadata?: unknown };
    if (p.data instanceof Uint8Array && p.metadata) {
      let payloads = [v as never];
      for (const codec of [...payloadCodecs].reverse()) payloads = (await codec.decode(payloads)) as never[];
      texts.push(JSON.stringify(payloadConverter.fromPayload(payloads[0] as never)));
      texts.push(Buffer.from(p.data).toString('base64'), Buffer.from(p.data).toString('latin1'));
      return;
    }
    for (const x of Object.values(v)) await walk(x);
  };
  await walk(history);
  return `${JSON.stringify(history)}\n${texts.join('\n')}`;
}

describe('admission the operator controls', () => {
  it('a client with namespace access and no operator key creates a runner, issues itself a token, registers: no keys, Unauthorized', async () => {
    const name = uniqueName('not-a-runner');
    // The supported API refuses before anything is sent.
    const keyless = testRunnerAdmin(h.client, h.controlQueue);
    Object.assign(keyless, { operatorKey: null });
    const noKey = await refusal(keyless.create({ name, pool: 'linux' }));
    console.log(`create through RunnerAdmin without the operator key -> ${noKey.code}: ${noKey.message}`);
    expect(noKey.code).toBe('Unauthorized');

    // The raw updates: its own key pair signs its own grant; the workflow records the token.
    const attacker = generateSigningKey();
    const { request, token } = signedToken(attacker, name);
    const record = (await h.client.workflow.executeUpdateWithStart(issueTokenUpdate, {
      args: [request],
      startWorkflowOperation: new WithStartWorkflowOperation(WORKFLOW_TYPES.runner, {
        workflowId: runnerWorkflowId(name),
        taskQueue: h.controlQueue,
        args: [{ name, pool: 'linux' }],
        workflowIdConflictPolicy: 'USE_EXISTING',
      }),
    })) as RunnerRecord;
    console.log(`started runner/${name} and issued a self-signed token -> recorded (token ${record.token?.id})`);
    expect(record.token?.key).toBe(request.grant?.tokenKey);

    const host = newHost();
    const refused = await refusal(operator.register(name, registerAs(host, token, name)));
    console.log(`register with that token (a valid proof by its token key) -> ${refused.code}: ${refused.message}`);
    expect(refused.code).toBe('Unauthorized');
    expect(refused.message).toMatch(/not signed by the operator key; no data keys/);
    const after = await handle(name).query(recordQuery);
    console.log(`the record after: identity ${JSON.stringify(after.identity)}, token used ${after.token?.used}`);
    expect(after.identity).toBeNull();
    expect(after.token?.used).toBe(false);

    // A token in the form from before grants (a sha256 only) is refused outright.
    const old = await refusal(
      handle(name).executeUpdate(issueTokenUpdate, {
        args: [{ tokenId: 'abcdef012345', tokenHash: 'a'.repeat(64), expiresAt: request.expiresAt, by: 'attacker' }],
      }),
    );
    console.log(`issueToken with a bare sha256 (the old form) -> ${old.code}: ${old.message}`);
    expect(old.code).toBe('Unauthorized');

    // The same host, admitted by the operator, gets the data key.
    const legit = uniqueName('runner');
    const created = await operator.create({ name: legit, pool: 'linux', by: 'test' });
    const grant = await operator.register(legit, registerAs(host, created.token, legit));
    const opened = openKeys(host.privateKey, grant.keys);
    console.log(
      `an operator-created runner registers -> ${opened.length} data key(s): ${opened.map((k) => k.id).join(', ')}`,
    );
    expect(opened.length).toBeGreaterThan(0);
    expect(opened.every((k) => k.id.startsWith(ring.ids()[0] as string))).toBe(true);
  });

  it('an operator grant altered (its token key swapped, or its pool) admits nobody', async () => {
    const name = uniqueName('altered');
    const created = await operator.create({ name, pool: 'linux', by: 'test' });
    // The grant and its signature are in the history for anyone to read; the attacker puts its
    // own token key in, keeping the operator's signature.
    const seen = await handle(name).query(recordQuery);
    expect(seen.token?.key).toBeDefined();
    const { request: legit } = signedToken(testOperator(), name);
    const mine = createRegistrationToken();
    const swapped: IssueTokenRequest = {
      ...legit,
      tokenId: mine.id,
      grant: { ...legit.grant!, tokenId: mine.id, tokenKey: mine.publicKey },
    };
    await handle(name).executeUpdate(issueTokenUpdate, { args: [swapped] });
    const refused = await refusal(operator.register(name, registerAs(newHost(), mine.token, name)));
    console.log(
      `operator's signature over a grant whose token key was swapped -> register ${refused.code}: ${refused.message}`,
    );
    expect(refused.code).toBe('Unauthorized');
    expect(refused.message).toMatch(/not signed by the operator key/);

    // A grant for another pool than the runner's is refused by the workflow itself.
    const otherPool = signedToken(testOperator(), name, { pool: 'gpu' });
    const pool = await refusal(handle(name).executeUpdate(issueTokenUpdate, { args: [otherPool.request] }));
    console.log(`an operator grant for pool gpu sent to a linux runner -> ${pool.code}: ${pool.message}`);
    expect(pool.code).toBe('InvalidArgument');
    // The killed token of `create` stays dead.
    const dead = await refusal(operator.register(name, registerAs(newHost(), created.token, name)));
    expect(dead).toEqual({ code: 'TokenRejected', message: 'token rejected: unknown token' });
  });

  it('a signed purge replayed on another runner, on the same runner, or much later is refused', async () => {
    const a = uniqueName('purge-a');
    const b = uniqueName('purge-b');
    await operator.create({ name: a, pool: 'linux', by: 'test' });
    await operator.create({ name: b, pool: 'linux', by: 'test' });

    const purgeA = signedCommand(a, 'purge', { by: 'ops', reason: 'decommissioned' });
    const onB = await refusal(handle(b).executeUpdate(purgeUpdate, { args: [purgeA] }));
    console.log(`runner ${a}'s signed purge sent to ${b} -> ${onB.code}: ${onB.message}`);
    expect(onB.code).toBe('Unauthorized');
    expect((await handle(b).query(recordQuery)).status).not.toBe('deleted');

    const unsigned = await refusal(handle(b).executeUpdate(purgeUpdate, { args: [{ by: 'attacker' }] }));
    console.log(`an unsigned purge of ${b} -> ${unsigned.code}: ${unsigned.message}`);
    expect(unsigned.code).toBe('Unauthorized');

    const stale = signedCommand(b, 'purge', { by: 'ops' }, Date.now() - 10 * 60_000);
    const late = await refusal(handle(b).executeUpdate(purgeUpdate, { args: [stale] }));
    console.log(`a purge of ${b} signed 10 minutes ago -> ${late.code}: ${late.message}`);
    expect(late.code).toBe('Unauthorized');

    const disableB = signedCommand(b, 'disable', { by: 'ops' });
    await handle(b).executeUpdate(disableUpdate, { args: [disableB] });
    const again = await refusal(handle(b).executeUpdate(disableUpdate, { args: [disableB] }));
    console.log(`the same signed disable of ${b} sent twice -> first applied, second ${again.code}: ${again.message}`);
    expect(again.code).toBe('Unauthorized');
    expect(again.message).toMatch(/used already/);

    const tampered = { ...purgeA, reason: 'something else' };
    const changed = await refusal(handle(a).executeUpdate(purgeUpdate, { args: [tampered] }));
    console.log(`runner ${a}'s signed purge with its reason changed -> ${changed.code}: ${changed.message}`);
    expect(changed.code).toBe('Unauthorized');

    const purged = (await handle(a).executeUpdate(purgeUpdate, { args: [purgeA] })) as RunnerRecord;
    console.log(`runner ${a}'s signed purge sent to ${a} -> status ${purged.status}`);
    expect(purged.status).toBe('deleted');
  });

  it('a token living longer than 7 days is refused by the workflow, even operator-signed and sent raw', async () => {
    const name = uniqueName('ttl');
    await operator.create({ name, pool: 'linux', by: 'test' });
    const long = signedToken(testOperator(), name, { expiresAt: Date.now() + 8 * 86_400_000 });
    const refused = await refusal(handle(name).executeUpdate(issueTokenUpdate, { args: [long.request] }));
    console.log(`issueToken (raw update) with an operator grant for 8 days -> ${refused.code}: ${refused.message}`);
    expect(refused.code).toBe('InvalidArgument');
    expect(refused.message).toMatch(/at most 7 days/);

    const backdated = signedToken(testOperator(), name, {
      issuedAt: Date.now() - 30 * 86_400_000,
      expiresAt: Date.now() + 86_400_000,
    });
    const old = await refusal(handle(name).executeUpdate(issueTokenUpdate, { args: [backdated.request] }));
    console.log(`a grant issued 30 days ago that expires tomorrow -> ${old.code}: ${old.message}`);
    expect(old.message).toMatch(/at most 7 days/);

    const cli = await refusal(operator.issueToken(name, { ttlMs: 8 * 86_400_000 }));
    console.log(`RunnerAdmin.issueToken for 8 days -> ${cli.code}: ${cli.message}`);
    expect(cli.code).toBe('InvalidArgument');
  });

  it("the register update's history holds no token and no token secret, only the proof", async () => {
    const name = uniqueName('history');
    const created = await operator.create({ name, pool: 'linux', by: 'test' });
    const host = newHost();
    const request = registerAs(host, created.token, name);
    await operator.register(name, request);
    const text = await decodedHistory(name);
    const secret = created.token.slice(`rfr_${created.tokenId}_`.length);
    const forms = [
      created.token,
      secret,
      Buffer.from(secret, 'base64url').toString('base64'),
      Buffer.from(secret, 'base64url').toString('hex'),
    ];
    const found = forms.filter((f) => text.includes(f));
    console.log(
      `searched ${text.length} characters of decoded history for the token in 4 forms -> ${found.length} found; ` +
        `the proof signature is there: ${text.includes(request.proofSignature ?? '-')}`,
    );
    expect(found).toEqual([]);
    // The search sees decoded payloads: the proof and the identity are there.
    expect(text).toContain(request.proofSignature);
    expect(text).toContain(host.signing.publicKey);
    const record = await handle(name).query(recordQuery);
    expect(record.identity?.signingKey).toBe(host.signing.publicKey);
  });
});
