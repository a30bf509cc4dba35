/**
 * The NATS counterpart of the relay bench handler: a subscriber on subject
 * "relay" that reads each message as JSON `{"to": USER, ...}` and publishes
 * the same data to subject `g.USER`, the way src/bench/relay-handler.ts
 * answers `sendClients [USER]`. Parsing and re-serialising mirror what the
 * handler SDK does with each request.
 *
 * Usage: bun run bench/compare/nats-relay.ts HOST PORT
 * @module
 */
import { loadRuntime } from "../../src/runtime/index.ts";
import { connectNats } from "./nats-wire.ts";

const [host, port] = process.argv.slice(2);
if (!host || !port) {
  console.error("usage: nats-relay.ts HOST PORT");
  process.exit(2);
}
const runtime = await loadRuntime();
const text = new TextDecoder();
const nats = await connectNats(runtime, { kind: "tcp4", host, port: Number(port) }, "relay");
nats.subscribe("relay", (payload) => {
  const data = JSON.parse(text.decode(payload)) as { to?: unknown };
  if (typeof data.to === "string") nats.publish(`g.${data.to}`, JSON.stringify(data));
});
await nats.flush();
console.error("relay: subscribed");
const stop = () => {
  nats.close();
  process.exit(0);
};
process.on("SIGTERM", stop);
process.on("SIGINT", stop);
console.error(`relay: ${await nats.closed}`);
process.exit(1);
