import { NamespaceNotFoundError } from '@temporalio/client';
import { describe, expect, it } from 'vitest';
import { toRunfleetError } from '../../src/client/errors';
import { grpcStatus, isTransient, rideOut } from '../../src/client/ride';
import { RunfleetError } from '../../src/errors';

/** An error shaped as @grpc/grpc-js throws them (what `isGrpcServiceError` recognises). */
function grpcError(code: number, details: string): Error {
  return Object.assign(new Error(`${code} ${details}`), { code, details, metadata: {} });
}

describe('isTransient', () => {
  it('is true for an unreachable server, a worker that did not answer and a recovering service', () => {
    expect(isTransient(new RunfleetError('ServerUnreachable', 'down'))).toBe(true);
    expect(isTransient(new RunfleetError('NoAnswer', 'no control worker answered'))).toBe(true);
    expect(isTransient(grpcError(14, 'connection refused'))).toBe(true);
    expect(isTransient(grpcError(4, 'context deadline exceeded'))).toBe(true);
    expect(isTransient(new Error('wrapped', { cause: grpcError(13, 'shard closed') }))).toBe(true);
    // A frontend whose call to a killed matching service broke (seen in test/cluster/service-faults).
    expect(isTransient(new Error('Failed to query Workflow', { cause: grpcError(1, 'Call cancelled') }))).toBe(true);
  });

  it('is false for an answer: no such run, a bad argument, a refused credential, anything unknown', () => {
    expect(isTransient(new RunfleetError('NotFound', 'no run'))).toBe(false);
    expect(isTransient(new RunfleetError('InvalidArgument', 'bad'))).toBe(false);
    expect(isTransient(new RunfleetError('Unauthorized', 'no'))).toBe(false);
    expect(isTransient(grpcError(5, 'not found'))).toBe(false);
    expect(isTransient(grpcError(7, 'permission denied'))).toBe(false);
    expect(isTransient(new Error('query failed: nondeterminism'))).toBe(false);
    // A coded error decides, whatever caused it.
    expect(isTransient(new RunfleetError('NotFound', 'gone', { cause: grpcError(14, 'x') }))).toBe(false);
  });
});

describe('a namespace not found', () => {
  const ctx = { address: '127.0.0.1:7233', namespace: 'default' };

  it('is a wrong namespace, said at once, when the namespace never answered this client', () => {
    const err = toRunfleetError(new NamespaceNotFoundError('default'), ctx);
    expect(err).toMatchObject({ code: 'InvalidConfig', message: expect.stringContaining('TEMPORAL_NAMESPACE') });
    expect(isTransient(err)).toBe(false);
  });

  it('is a service that cannot read its namespaces, ridden out, once the namespace has answered', () => {
    // Temporal on PostgreSQL said so while its database was down (test/cluster/service-faults).
    const err = toRunfleetError(new NamespaceNotFoundError('default'), { ...ctx, namespaceAnswered: true });
    expect(err).toMatchObject({ code: 'NoAnswer', message: expect.stringContaining('answered before') });
    expect(isTransient(err)).toBe(true);
  });
});

describe('rideOut', () => {
  it('asks again through transient errors, says once per reason what it waits for, and when it is back', async () => {
    const said: string[] = [];
    let calls = 0;
    const value = await rideOut(
      'run r1',
      async () => {
        calls++;
        if (calls <= 2) throw new RunfleetError('ServerUnreachable', 'cannot reach Temporal at 127.0.0.1:1');
        if (calls === 3) throw new RunfleetError('NoAnswer', 'run r1 did not answer its state query');
        return 'state';
      },
      { initialMs: 5, maxMs: 10, onWait: (m) => said.push(m) },
    );
    expect(value).toBe('state');
    expect(calls).toBe(4);
    expect(said).toHaveLength(3);
    expect(said[0]).toMatch(/^waiting for run r1: cannot reach Temporal at 127\.0\.0\.1:1/);
    expect(said[1]).toMatch(/^waiting for run r1: run r1 did not answer its state query/);
    expect(said[2]).toMatch(/^run r1 answered again after /);
  });

  it('gives up at once on a real error', async () => {
    let calls = 0;
    const err = await rideOut('run r2', async () => {
      calls++;
      throw new RunfleetError('NotFound', 'no run r2');
    }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(RunfleetError);
    expect((err as RunfleetError).code).toBe('NotFound');
    expect(calls).toBe(1);
  });

  it('stops when its signal aborts, throwing the last transient error', async () => {
    const stop = new AbortController();
    setTimeout(() => stop.abort(), 50);
    const err = await rideOut(
      'run r3',
      async () => {
        throw new RunfleetError('ServerUnreachable', 'still down');
      },
      { initialMs: 5, maxMs: 10, signal: stop.signal },
    ).catch((e: unknown) => e);
    expect((err as RunfleetError).code).toBe('ServerUnreachable');
  });
});

describe('grpcStatus', () => {
  it("names the cause chain's gRPC code and details, or nothing", () => {
    expect(grpcStatus(new Error('Failed to query Workflow', { cause: grpcError(1, 'Call cancelled') }))).toBe(
      ' (gRPC 1: Call cancelled)',
    );
    expect(grpcStatus(new Error('plain'))).toBe('');
  });
});
