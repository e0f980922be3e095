/**
 * Test hosts of their own on this machine: a network namespace joined to the host's by a veth
 * pair (`ip netns`, `ip link`; needs root), with a TCP relay on the host side of the link to the
 * suite's Temporal. A runner started in it reaches Temporal only through its link, so cutting
 * the link (the host side down) partitions it, and only it. Traffic stays on the addresses made
 * here and loopback.
 */
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createConnection, createServer, type Server, type Socket } from 'node:net';

export interface TestHost {
  /** The namespace's name (`ip netns exec NAME ...`). */
  name: string;
  /** `host:port` of the relay to Temporal, as seen from the namespace. */
  temporalAddress: string;
  /** Takes the link down: the host is cut off (its open connections hang, as on a real partition). */
  cut(): void;
  restore(): void;
  remove(): Promise<void>;
}

let hosts = 0;

function ip(...args: string[]): void {
  execFileSync('ip', args, { stdio: ['ignore', 'ignore', 'pipe'] });
}

/** A test host whose Temporal is `temporal` (`host:port` on this machine's loopback). */
export async function createTestHost(temporal: string): Promise<TestHost> {
  const n = (process.pid % 200) + 20 + hosts++;
  const tag = randomBytes(3).toString('hex');
  const name = `rf-${tag}`;
  const outside = `rfo${tag}`;
  const inside = `rfi${tag}`;
  // A /30 of its own per host, in a range nothing else here uses.
  const subnet = `10.231.${n % 250}`;
  const hostIp = `${subnet}.1`;
  const nsIp = `${subnet}.2`;
  ip('netns', 'add', name);
  try {
    ip('link', 'add', outside, 'type', 'veth', 'peer', 'name', inside);
    ip('link', 'set', inside, 'netns', name);
    ip('addr', 'add', `${hostIp}/30`, 'dev', outside);
    ip('link', 'set', outside, 'up');
    ip('netns', 'exec', name, 'ip', 'addr', 'add', `${nsIp}/30`, 'dev', inside);
    ip('netns', 'exec', name, 'ip', 'link', 'set', inside, 'up');
    ip('netns', 'exec', name, 'ip', 'link', 'set', 'lo', 'up');
  } catch (err) {
    ip('netns', 'del', name);
    throw err;
  }
  const relay = await startRelay(hostIp, temporal);
  return {
    name,
    temporalAddress: `${hostIp}:${relay.port}`,
    cut: () => ip('link', 'set', outside, 'down'),
    restore: () => ip('link', 'set', outside, 'up'),
    async remove() {
      await relay.close();
      try {
        ip('link', 'del', outside);
      } catch {
        // gone with the namespace already
      }
      ip('netns', 'del', name);
    },
  };
}

/** Relays TCP from `host:0` to `target` (`host:port`). */
async function startRelay(host: string, target: string): Promise<{ port: number; close(): Promise<void> }> {
  const [targetHost, targetPort] = [
    target.slice(0, target.lastIndexOf(':')),
    Number(target.slice(target.lastIndexOf(':') + 1)),
  ];
  const sockets = new Set<Socket>();
  const server: Server = createServer((client) => {
    const upstream = createConnection({ host: targetHost, port: targetPort });
    for (const s of [client, upstream]) {
      sockets.add(s);
      s.on('close', () => sockets.delete(s));
      s.on('error', () => {
        client.destroy();
        upstream.destroy();
      });
    }
    client.pipe(upstream);
    upstream.pipe(client);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, host, () => resolve());
  });
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : 0;
  return {
    port,
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}
