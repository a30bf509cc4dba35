/**
 * A TCP proxy on a free loopback port in front of a server, for tests that
 * need one connection's traffic to arrive late: a chunk a client writes
 * that `hold` picks out waits `ms` before it is passed on, and so does
 * everything after it on that connection, so the order is kept.
 */
import { connect, createServer, type Socket } from "node:net";

export interface RunningProxy {
  port: number;
  /** How many chunks were held back so far. */
  held(): number;
  stop(): Promise<void>;
}

export async function startHoldingProxy(targetPort: number, hold: (chunk: Buffer) => boolean, ms: number): Promise<RunningProxy> {
  const sockets = new Set<Socket>();
  let held = 0;
  const server = createServer((client) => {
    const upstream = connect(targetPort, "127.0.0.1");
    for (const s of [client, upstream]) {
      sockets.add(s);
      s.on("close", () => {
        sockets.delete(s);
        client.destroy();
        upstream.destroy();
      });
      s.on("error", () => {});
    }
    upstream.pipe(client);
    let lateUntil = 0;
    let chain = Promise.resolve();
    client.on("data", (chunk: Buffer) => {
      if (hold(chunk)) {
        held++;
        lateUntil = Math.max(lateUntil, Date.now() + ms);
      }
      // Through one chain, so a chunk behind a held one waits for it.
      chain = chain
        .then(() => {
          const wait = lateUntil - Date.now();
          return wait > 0 ? new Promise<void>((r) => setTimeout(r, wait)) : undefined;
        })
        .then(() => void upstream.write(chunk));
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, "127.0.0.1", resolve);
  });
  return {
    port: (server.address() as { port: number }).port,
    held: () => held,
    stop: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}
