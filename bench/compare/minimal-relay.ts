/**
 * A minimal relay gateway: the least code that carries `bester bench`'s relay
 * flow (sender → gateway → handler → gateway → receiver) with bester's
 * connection pattern: clients on TCP with Bester framing, the handler on its
 * UNIX socket either through a new connection per message (PROTOCOL.md §4,
 * the original) or through one kept connection, requests pipelined and
 * answers taken in FIFO order. A reference ceiling for issue 7 (what the
 * connection pattern itself allows on this machine), not a product; run by
 * bench/compare/nats.ts --minimal, with `bester bench handler` as its handler.
 *
 * What it does: any username logs in (first frame → good "auth_special"
 * report); each later frame's payload.data goes to the handler; a "0" answer
 * with a sendClients command is delivered to every connected session of the
 * named users, then the sender gets the good report, in the sender's message
 * order (a FIFO per sender, as the gateway keeps); anything else gets a bad
 * report with no error detail.
 *
 * What it omits, compared with the gateway (src/server/): passwords and the
 * account store; the server scope and peers; config files; starting and
 * supervising the handler; the handler envelope; sendServers, sendHandler,
 * the built-in types (dummy, builtin) after the login and the early
 * header.command answer shape; validation of messages (a malformed one is
 * misrouted or dropped, never reported) and fatal errors; frame-size limits
 * (the frame decoder is the gateway's, with no limit); handler timeouts
 * (only the adapter's connect deadline); session windows and back-pressure;
 * more than one persistent connection, and redialling it (losing it ends
 * the process); the offline queue; stats, logging, the control API, the
 * informer; graceful shutdown (SIGTERM/SIGINT exit 0 at once).
 *
 * Usage: bun run bench/compare/minimal-relay.ts --port P --handler SOCKET --mode per-message|persistent
 * @module
 */
import { parseArgs } from "node:util";
import { FrameDecoder } from "../../src/protocol/frame.ts";
import { OutBuffer } from "../../src/protocol/out-buffer.ts";
import { loadRuntime } from "../../src/runtime/index.ts";
import type { Conn } from "../../src/runtime/types.ts";

const { values } = parseArgs({ options: { port: { type: "string" }, handler: { type: "string" }, mode: { type: "string" } } });
const { port, handler, mode } = values;
if (!port || !handler || (mode !== "per-message" && mode !== "persistent")) {
  console.error("usage: minimal-relay.ts --port P --handler SOCKET --mode per-message|persistent");
  process.exit(2);
}
const runtime = await loadRuntime();
const socket = { kind: "unix" as const, path: handler };
const CONNECT_MS = 60_000;

type Answer = { header?: { status?: unknown; command?: { type?: unknown; data?: unknown } }; data?: unknown } | null;
interface Slot { id: unknown; type: unknown; answer: Answer; done: boolean }
interface Client { user: string | undefined; slots: Slot[]; head: number; decoder: FrameDecoder }

/** Each connection's frames of one turn leave in one write at its end, as the gateway's do; the rest waits for drain. */
const outs = new WeakMap<Conn, OutBuffer>();
const dirty = new Set<Conn>();
let flushQueued = false;

function flushConn(c: Conn): void {
  outs.get(c)?.writeTo(c);
}

function flushAll(): void {
  flushQueued = false;
  for (const c of dirty) flushConn(c);
  dirty.clear();
}

function writeFrame(c: Conn, json: string): void {
  let out = outs.get(c);
  if (out === undefined) outs.set(c, (out = new OutBuffer()));
  out.pushFrame(json);
  dirty.add(c);
  if (flushQueued) return;
  flushQueued = true;
  queueMicrotask(flushAll);
}

/** Connected sessions by username. */
const users = new Map<string, Set<Conn>>();

/** Sends one request to the handler; `done` gets its answer (null when there is none). */
let ask: (json: string, done: (answer: Answer) => void) => void;
if (mode === "persistent") {
  const waiting: Array<(answer: Answer) => void> = [];
  let head = 0;
  const decoder = new FrameDecoder(Infinity, (value) => {
    const done = waiting[head++]!;
    if (head === waiting.length) (waiting.length = 0), (head = 0);
    done(value as Answer);
  });
  const link = await runtime.connect(socket, {
    data: (_c, chunk) => void decoder.push(chunk),
    drain: flushConn,
    close() {
      console.error("minimal-relay: the handler connection closed");
      runtime.exit(1);
    },
  }, CONNECT_MS);
  ask = (json, done) => {
    waiting.push(done);
    writeFrame(link, json);
  };
} else {
  ask = (json, done) => {
    let answered = false;
    const finish = (answer: Answer) => (answered ? undefined : ((answered = true), done(answer)));
    const decoder = new FrameDecoder(Infinity, (value) => finish(value as Answer));
    runtime.connect(socket, {
      data(c, chunk) {
        decoder.push(chunk);
        if (answered) c.destroy(); // read the answer, close (PROTOCOL.md §4)
      },
      drain: flushConn,
      close: () => finish(null),
    }, CONNECT_MS).then((c) => writeFrame(c, json), () => finish(null));
  };
}

/** Finishes the sender's messages whose answers are in, in the order it sent them. */
function release(from: Conn, client: Client): void {
  while (client.head < client.slots.length && client.slots[client.head]!.done) {
    const { id, type, answer } = client.slots[client.head++]!;
    const command = answer?.header?.command;
    const ok = answer?.header?.status === "0" && command?.type === "sendClients" && Array.isArray(command.data);
    if (ok) {
      const frame = JSON.stringify({ header: { messageType: "receivedMessage" }, payload: { data: answer!.data, type } });
      for (const user of command!.data as unknown[]) for (const to of users.get(String(user)) ?? []) writeFrame(to, frame);
    }
    writeFrame(from, JSON.stringify({ header: { status: ok ? "good" : "bad", messageType: "statusReport" }, payload: { id } }));
  }
  if (client.head === client.slots.length) (client.slots = []), (client.head = 0);
}

function onFrame(value: unknown, _index: number, owner: unknown): void {
  const conn = owner as Conn;
  const client = conn.context as Client;
  const frame = value as { header?: { authentication?: { username?: unknown } }; payload?: { type?: unknown; id?: unknown; data?: unknown } };
  if (client.user === undefined) {
    client.user = String(frame.header?.authentication?.username ?? "");
    (users.get(client.user) ?? users.set(client.user, new Set()).get(client.user)!).add(conn);
    writeFrame(conn, JSON.stringify({ header: { status: "good", messageType: "statusReport" }, payload: { id: "auth_special" } }));
    return;
  }
  const slot: Slot = { id: frame.payload?.id, type: frame.payload?.type, answer: null, done: false };
  client.slots.push(slot);
  ask(JSON.stringify(frame.payload?.data ?? null), (answer) => {
    slot.answer = answer;
    slot.done = true;
    release(conn, client);
  });
}

const listener = await runtime.listen({ kind: "tcp4", host: "127.0.0.1", port: Number(port) }, {
  open(conn) {
    conn.context = { user: undefined, slots: [], head: 0, decoder: new FrameDecoder(Infinity, onFrame, { owner: conn }) } satisfies Client;
  },
  data(conn, chunk) {
    if ((conn.context as Client).decoder.push(chunk)) conn.destroy();
  },
  drain: flushConn,
  close(conn) {
    const user = (conn.context as Client | undefined)?.user;
    if (user !== undefined) users.get(user)?.delete(conn);
  },
});
for (const sig of ["SIGTERM", "SIGINT"] as const) runtime.onSignal(sig, () => runtime.exit(0));
const at = listener.address;
console.error(`minimal-relay: listening on ${at.kind === "unix" ? at.path : `${at.host}:${at.port}`} (handler ${mode})`);
