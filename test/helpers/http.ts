/** Raw HTTP requests for tests that must choose every header (Host included), which fetch does not allow. */
import { request } from 'node:http';

export interface RawResponse {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

type RawOptions = { method?: string; headers?: Record<string, string>; body?: string | Buffer };

/**
 * A server that refuses a large body answers and closes while the body is still being sent; the
 * client then sometimes fails the write (EPIPE, ECONNRESET) before it has read the answer. Such a
 * request is sent again, up to three times in all, for the answer.
 */
export async function rawRequest(url: string, opts: RawOptions = {}): Promise<RawResponse> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await rawRequestOnce(url, opts);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (attempt >= 3 || (code !== 'EPIPE' && code !== 'ECONNRESET')) throw err;
    }
  }
}

function rawRequestOnce(url: string, opts: RawOptions): Promise<RawResponse> {
  const u = new URL(url);
  return new Promise((resolve, reject) => {
    const req = request(
      {
        host: u.hostname.replace(/^\[|\]$/g, ''),
        port: u.port,
        path: u.pathname,
        method: opts.method ?? 'POST',
        headers: { 'content-type': 'application/json', ...opts.headers },
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () =>
          resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString('utf8') }),
        );
        res.on('error', reject);
      },
    );
    // A server that refuses a large body answers and closes while it is still being sent.
    req.on('error', reject);
    req.end(opts.body);
  });
}
