/**
 * A tiny NATS client (core protocol only: CONNECT, PUB, SUB, MSG, PING/PONG),
 * on bester's runtime adapter so it costs per message what the bench's Bester
 * clients cost. Enough for the comparison in nats.ts; not a general client
 * (no reconnects, headers, TLS or auth).
 *
 * Protocol: https://docs.nats.io/reference/protocols/client
 * @module
 */
import { Buffer } from "node:buffer";
import { OutBuffer } from "../../src/protocol/out-buffer.ts";
import type { Conn, Endpoint, Runtime } from "../../src/runtime/types.ts";

const CR = 13;
const latin1 = new TextDecoder("latin1");
const encoder = new TextEncoder();
let scratch = Buffer.allocUnsafeSlow(64 * 1024);

export interface NatsClient {
  /** Subscribes; `onMessage` gets each payload (bytes valid only during the call). */
  subscribe(subject: string, onMessage: (payload: Uint8Array, subject: string) => void): void;
  /** Publishes a payload that is ASCII/UTF-8 text. */
  publish(subject: string, payload: string): void;
  /** Resolves when the server has processed everything sent so far (PING, PONG). */
  flush(): Promise<void>;
  close(): void;
  /** Resolves with why the connection ended. */
  readonly closed: Promise<string>;
}

export async function connectNats(runtime: Runtime, at: Endpoint, name: string): Promise<NatsClient> {
  let buf = new Uint8Array(0);
  const subs = new Map<string, { subject: string; fn: (payload: Uint8Array, subject: string) => void }>();
  const pongs: Array<() => void> = [];
  let nextSid = 1;
  let sawInfo: (() => void) | undefined;
  const info = new Promise<void>((resolve) => (sawInfo = resolve));
  let ended: (why: string) => void = () => {};
  const closed = new Promise<string>((resolve) => (ended = resolve));
  let conn: Conn | undefined;
  // What is sent in one turn leaves in one write at its end, as the Bester
  // clients' frames do; what the socket does not take waits for its drain.
  const out = new OutBuffer();
  let flushQueued = false;
  const flushOut = () => {
    flushQueued = false;
    if (conn !== undefined) out.writeTo(conn);
  };
  const send = (bytes: Uint8Array) => {
    out.push(bytes);
    if (flushQueued) return;
    flushQueued = true;
    queueMicrotask(flushOut);
  };

  /** Parses what is buffered; returns the offset of the first byte not yet used. */
  const parse = (data: Uint8Array): number => {
    let at = 0;
    for (;;) {
      const eol = data.indexOf(CR, at);
      if (eol < 0 || eol + 1 >= data.length) return at;
      const line = latin1.decode(data.subarray(at, eol));
      if (line.startsWith("MSG ")) {
        // MSG <subject> <sid> [reply-to] <#bytes>
        const parts = line.split(" ");
        const size = Number(parts[parts.length - 1]);
        const start = eol + 2;
        if (data.length < start + size + 2) return at;
        const sub = subs.get(parts[2]!);
        sub?.fn(data.subarray(start, start + size), parts[1]!);
        at = start + size + 2;
        continue;
      }
      at = eol + 2;
      if (line === "PING") send(encoder.encode("PONG\r\n"));
      else if (line === "PONG") pongs.shift()?.();
      else if (line.startsWith("INFO ")) sawInfo?.();
      else if (line.startsWith("-ERR")) {
        ended(`${name}: server error ${line.slice(5)}`);
        conn?.destroy();
      }
    }
  };

  conn = await runtime.connect(
    at,
    {
      data(_c, chunk) {
        let data: Uint8Array;
        if (buf.length === 0) data = chunk;
        else {
          data = new Uint8Array(buf.length + chunk.length);
          data.set(buf);
          data.set(chunk, buf.length);
        }
        const used = parse(data);
        // Copied: the runtime may reuse the chunk.
        buf = used < data.length ? data.slice(used) : new Uint8Array(0);
      },
      drain() {
        flushOut();
      },
      close(_c, err) {
        ended(`${name}: connection closed${err ? `: ${err.message}` : ""}`);
        for (const p of pongs.splice(0)) p();
      },
    },
    5_000,
  );
  await info;
  const c = conn;
  const connectOptions = { verbose: false, pedantic: false, name, lang: "ts", version: "0.0.0", protocol: 1, echo: false };
  send(encoder.encode(`CONNECT ${JSON.stringify(connectOptions)}\r\n`));

  const client: NatsClient = {
    subscribe(subject, fn) {
      const sid = String(nextSid++);
      subs.set(sid, { subject, fn });
      send(encoder.encode(`SUB ${subject} ${sid}\r\n`));
    },
    publish(subject, payload) {
      // Bench payloads are ASCII: string length is the byte count. Encoded into
      // a reused buffer, which the queue copies.
      const text = `PUB ${subject} ${payload.length}\r\n${payload}\r\n`;
      if (scratch.length < text.length) scratch = Buffer.allocUnsafeSlow(text.length * 2);
      send(scratch.subarray(0, scratch.write(text, 0, "latin1")));
    },
    flush() {
      return new Promise<void>((resolve) => {
        pongs.push(resolve);
        send(encoder.encode("PING\r\n"));
      });
    },
    close() {
      flushOut();
      c.end();
    },
    closed,
  };
  await client.flush();
  return client;
}
