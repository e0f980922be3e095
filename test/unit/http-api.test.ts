/**
 * The HTTP API reader against servers that misbehave (the network is untrusted): every bad answer
 * is an error in Runfleet's taxonomy that names the address, never a hang, a crash or a page of
 * made-up runs. The real server's answers are tested in test/integration/cli.test.ts.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { TemporalHttpApi } from '../../src/client/http-api';
import { HttpRunReader } from '../../src/client/http-reader';
import { RunfleetError } from '../../src/errors';

let server: Server | undefined;
afterEach(async () => {
  server?.closeAllConnections();
  await new Promise<void>((resolve) => (server ? server.close(() => resolve()) : resolve()));
  server = undefined;
});

/** A local server answering with `handler`; what each request asked is pushed to `seen`. */
async function serve(handler: (req: IncomingMessage, res: ServerResponse) => void): Promise<string> {
  server = createServer(handler);
  await new Promise<void>((resolve) => server!.listen(0, '127.0.0.1', resolve));
  return `127.0.0.1:${(server.address() as AddressInfo).port}`;
}

function reader(httpAddress: string, extra: { apiKey?: string; timeoutMs?: number } = {}): HttpRunReader {
  return new HttpRunReader(
    new TemporalHttpApi({
      httpAddress,
      connection: { address: 'unused:7233', namespace: 'ns one', ...(extra.apiKey ? { apiKey: extra.apiKey } : {}) },
      connectTimeoutMs: 1_000,
      ...(extra.timeoutMs ? { timeoutMs: extra.timeoutMs } : {}),
    }),
  );
}

async function failure(p: Promise<unknown>): Promise<RunfleetError> {
  const err = await p.then(
    () => null,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(RunfleetError);
  return err as RunfleetError;
}

const payload = (v: unknown) => ({
  metadata: { encoding: Buffer.from('json/plain').toString('base64') },
  data: Buffer.from(JSON.stringify(v)).toString('base64'),
});

describe('HttpRunReader', () => {
  it('asks for the visibility query with full payloads, sends the API key, and reads a page', async () => {
    const seen: { url: string; auth: string | undefined }[] = [];
    const address = await serve((req, res) => {
      seen.push({ url: req.url ?? '', auth: req.headers.authorization });
      res.setHeader('content-type', 'application/json');
      res.end(
        JSON.stringify({
          executions: [
            {
              execution: { workflowId: 'run/g/a1', runId: 'r' },
              status: 'WORKFLOW_EXECUTION_STATUS_COMPLETED',
              startTime: '2026-12-06T18:50:05.456395Z',
              closeTime: '2026-12-06T18:50:06.1Z',
              searchAttributes: {
                indexedFields: {
                  RunfleetGroup: payload('/g'),
                  RunfleetPhase: payload('finished'),
                  RunfleetResult: payload('success'),
                },
              },
              memo: { fields: { name: payload('nightly') } },
            },
          ],
          nextPageToken: Buffer.from([1, 2, 3]).toString('base64'),
        }),
      );
    });
    const page = await reader(address, { apiKey: 'k-1' }).listRunsPage({ group: '/g', phase: 'finished', limit: 7 });
    expect(page).toEqual({
      runs: [
        {
          id: 'run/g/a1',
          name: 'nightly',
          group: '/g',
          phase: 'finished',
          result: 'success',
          status: 'COMPLETED',
          startTime: '2026-12-06T18:50:05.456Z',
          closeTime: '2026-12-06T18:50:06.100Z',
        },
      ],
      nextPageToken: Buffer.from([1, 2, 3]).toString('base64url'),
    });
    const url = new URL(`http://x${seen[0]!.url}`);
    expect(url.pathname).toBe('/api/v1/namespaces/ns%20one/workflows');
    expect(url.searchParams.get('noPayloadShorthand')).toBe('true');
    expect(url.searchParams.get('pageSize')).toBe('7');
    expect(url.searchParams.get('query')).toBe(
      "WorkflowType = 'runWorkflow' AND RunfleetGroupPath = '/g' AND RunfleetPhase = 'finished'",
    );
    expect(seen[0]!.auth).toBe('Bearer k-1');
  });

  it('refuses a bad filter (a query injection among them) before asking anything', async () => {
    let asked = 0;
    const address = await serve((_req, res) => {
      asked++;
      res.end('{}');
    });
    const r = reader(address);
    expect((await failure(r.listRunsPage({ group: "/g' OR WorkflowType = 'x" }))).code).toBe('InvalidArgument');
    expect((await failure(r.listRunsPage({ limit: 5000 }))).code).toBe('InvalidArgument');
    expect((await failure(r.countRuns({ since: 'soon' }))).code).toBe('InvalidArgument');
    expect(asked).toBe(0);
  });

  it.each([
    [404, { code: 5, message: 'Namespace ns one is not found.' }, 'NotFound', 'is not found'],
    [403, { code: 7, message: 'Request unauthorized.' }, 'Unauthorized', 'Request unauthorized'],
    [400, { code: 3, message: 'invalid query' }, 'InvalidArgument', 'invalid query'],
    [503, { code: 14, message: 'shutting down' }, 'ServerUnreachable', 'shutting down'],
    [500, { code: 13, message: 'boom' }, 'ComponentUnavailable', 'answered 500: boom'],
  ] as const)('an error answer %i becomes %s', async (status, body, code, text) => {
    const address = await serve((_req, res) => {
      res.statusCode = status;
      res.end(JSON.stringify(body));
    });
    const err = await failure(reader(address).countRuns());
    expect(err.code).toBe(code);
    expect(err.message).toContain(text);
  });

  it('prints no terminal escape a server puts in its answer', async () => {
    const address = await serve((_req, res) => {
      res.statusCode = 500;
      res.end(JSON.stringify({ code: 13, message: 'boom\u001b]0;pwned\u0007\u001b[2J' + 'x'.repeat(1000) }));
    });
    const err = await failure(reader(address).countRuns());
    expect(err.message).toContain('boom?]0;pwned??[2J');
    expect(err.message).not.toMatch(/[\u0000-\u001f]/);
    expect(err.message.length).toBeLessThan(500);
  });

  it('refuses an answer that is not JSON, naming the address', async () => {
    const address = await serve((_req, res) => res.end('<html>proxy login</html>'));
    const err = await failure(reader(address).listRunsPage());
    expect(err.code).toBe('ComponentUnavailable');
    expect(err.message).toContain(
      `Temporal's HTTP API at ${address} (RUNFLEET_HTTP_ADDRESS) answered 200 with no JSON`,
    );
  });

  it.each([
    ['a list that is not a list', { executions: { 0: 'x' } }, 'executions'],
    ['a count that is not a number', { count: 'many' }, 'count'],
    [
      'a workflow id that is not text',
      { executions: [{ execution: { workflowId: 7 } }] },
      'executions.0.execution.workflowId',
    ],
  ])('refuses %s, naming the field', async (_what, body, field) => {
    const address = await serve((_req, res) => res.end(JSON.stringify(body)));
    const r = reader(address);
    const err = await failure('count' in body ? r.countRuns() : r.listRunsPage());
    expect(err.code).toBe('ComponentUnavailable');
    expect(err.message).toContain(`in another shape: ${field}`);
  });

  it('stops reading an endless answer at 16 MiB instead of buffering it', async () => {
    const address = await serve((_req, res) => {
      const chunk = Buffer.alloc(1024 * 1024, 0x20);
      const write = () => {
        while (res.write(chunk));
        res.once('drain', write);
      };
      write();
    });
    const err = await failure(reader(address).listRunsPage());
    expect(err.code).toBe('ComponentUnavailable');
    expect(err.message).toContain('more than 16777216 bytes');
  });

  it('gives up on a server that never answers', async () => {
    const address = await serve(() => {
      /* never answers */
    });
    const started = Date.now();
    const err = await failure(reader(address, { timeoutMs: 300 }).countRuns());
    expect(err.code).toBe('ServerUnreachable');
    expect(err.message).toContain('did not answer in 300 ms');
    expect(Date.now() - started).toBeLessThan(5_000);
  });

  it('reports a closed port as unreachable, naming the setting', async () => {
    const address = await serve(() => undefined);
    server!.close();
    await new Promise((r) => setTimeout(r, 50));
    const err = await failure(reader(address).countRuns());
    expect(err.code).toBe('ServerUnreachable');
    expect(err.message).toMatch(
      new RegExp(`cannot reach Temporal's HTTP API at ${address} \\(RUNFLEET_HTTP_ADDRESS\\): .*ECONNREFUSED`),
    );
  });

  it('ignores what a visibility record holds besides a run: a forged status or name is text, not code', async () => {
    const address = await serve((_req, res) =>
      res.end(
        JSON.stringify({
          executions: [
            {
              execution: { workflowId: 'run/g/x' },
              status: 'WORKFLOW_EXECUTION_STATUS_RUNNING',
              searchAttributes: {
                indexedFields: { RunfleetPhase: { data: 'not base64 json!' }, RunfleetGroup: payload(42) },
              },
              memo: { fields: { name: { metadata: {}, data: Buffer.from('\u0000binary').toString('base64') } } },
            },
          ],
        }),
      ),
    );
    const page = await reader(address).listRunsPage();
    expect(page.runs[0]).toMatchObject({ id: 'run/g/x', name: '', group: '', phase: 'queued', status: 'RUNNING' });
    expect(page.nextPageToken).toBeNull();
  });
});
