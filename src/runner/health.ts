/**
 * A runner's health endpoints, for process supervisors and orchestrators:
 * - `GET /livez`: 200 as soon as the process runs (restart it only when this fails);
 * - `GET /readyz`: 200 while the runner serves work (connected, workers running, taking work),
 *   503 with the reason otherwise. Both answer JSON.
 */
import { createServer, type Server } from 'node:http';

export interface Readiness {
  ready: boolean;
  reason: string;
}

export interface HealthServer {
  port: number;
  close(): Promise<void>;
}

export function startHealthServer(opts: {
  host?: string;
  port: number;
  readiness(): Readiness;
}): Promise<HealthServer> {
  const server: Server = createServer((req, res) => {
    const path = (req.url ?? '').split('?')[0];
    const send = (code: number, body: unknown) => {
      res.writeHead(code, { 'content-type': 'application/json' });
      res.end(JSON.stringify(body) + '\n');
    };
    if (req.method !== 'GET' && req.method !== 'HEAD') return send(405, { error: 'GET only' });
    if (path === '/livez') return send(200, { live: true });
    if (path === '/readyz') {
      const r = opts.readiness();
      return send(r.ready ? 200 : 503, r);
    }
    send(404, { error: 'try /livez or /readyz' });
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port, opts.host ?? '127.0.0.1', () => {
      const address = server.address();
      resolve({
        port: typeof address === 'object' && address ? address.port : opts.port,
        close: () => new Promise<void>((done) => server.close(() => done())),
      });
    });
  });
}
