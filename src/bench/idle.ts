/**
 * `bester bench --idle N`: N authenticated clients that then do nothing, and
 * what they cost the gateway in resident memory.
 *
 * The clients use `node:net` (Bun and Deno both implement it), which, unlike
 * the runtime adapter, can pick the local address: one source address gives
 * at most the ephemeral port range (about 28,000 on Linux) connections to one
 * listener, so past that the clients spread over 127.0.0.1, 127.0.0.2, ...
 * (all of 127/8 is loopback on Linux).
 *
 * With a WebSocket URL (`--ws`), each client is the runtime's own
 * `WebSocket`, which cannot pick its source address: one address, so at
 * most the ephemeral port range of them.
 * @module
 */
import { connect, type Socket } from "node:net";
import { encodeJsonFrame } from "../protocol/frame.ts";
import type { Endpoint } from "../runtime/types.ts";
import { ephemeralPorts, round, vmKiB } from "./proc.ts";

export interface IdleOptions {
  target: Endpoint;
  /** Log in over this WebSocket URL instead of `target`. */
  url?: string;
  count: number;
  password: string;
  /** The gateway's process, for its memory; null when it is not ours (--connect). */
  gatewayPid: number | null;
  /** Logins in progress at once. */
  concurrency?: number;
  onProgress?(connected: number, failed: number): void;
}

export interface IdleResult {
  requested: number;
  connected: number;
  failed: number;
  /** Connections that were up and later closed before the measurement ended. */
  droppedAfterLogin: number;
  firstError: string | null;
  /** Set when an open-file limit allowed fewer clients than requested (`connected` then counts those). */
  limitedBy?: string;
  /** Set when the gateway died during the test: how, and its last log lines. */
  gatewayExit?: string;
  sourceAddresses: string[];
  openSeconds: number;
  /** Clients opened before the baseline was taken (warm-up), not counted in the per-connection figure. */
  warmupClients: number;
  gateway: {
    rssBeforeKiB: number | null;
    rssAfterKiB: number | null;
    peakRssKiB: number | null;
    /** (rssAfter - rssBefore) / clients opened after the baseline. */
    bytesPerConnection: number | null;
  } | null;
}

const LOGIN_TIMEOUT_MS = 15_000;
/** Opening stops after this many failures: the rest would fail the same way. */
const MAX_FAILURES = 200;
/** The whole opening phase is bounded. */
const OPEN_TIMEOUT_MS = 180_000;
/** Ports of each source address left for everything else on the machine. */
const PORT_MARGIN = 2_000;

/** Source addresses for `count` TCP connections to `target`; [] means "let the kernel choose". */
export function sourceAddressesFor(target: Endpoint, count: number): string[] {
  if (target.kind !== "tcp4" || !target.host.startsWith("127.")) return [];
  const perAddress = Math.max(1_000, ephemeralPorts() - PORT_MARGIN);
  if (count <= perAddress) return [];
  const n = Math.ceil(count / perAddress);
  return Array.from({ length: n }, (_, k) => `127.0.${Math.floor((k + 1) / 256)}.${(k + 1) % 256}`);
}

const latin1 = new TextDecoder("latin1");

function openOne(target: Endpoint, username: string, password: string, localAddress: string | undefined): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const socket =
      target.kind === "unix"
        ? connect({ path: target.path })
        : connect({ host: target.host, port: target.port, ...(localAddress ? { localAddress } : {}) });
    let got = "";
    const timer = setTimeout(() => fail(new Error(`no answer to the login within ${LOGIN_TIMEOUT_MS} ms`)), LOGIN_TIMEOUT_MS);
    const fail = (err: Error) => {
      clearTimeout(timer);
      socket.destroy();
      reject(err);
    };
    socket.once("error", fail);
    socket.once("connect", () => {
      const login = {
        header: { scope: "client", authentication: { username, password } },
        payload: { type: "dummy", id: "login", data: null },
      };
      socket.write(encodeJsonFrame(JSON.stringify(login)));
    });
    const onData = (chunk: Uint8Array) => {
      got += latin1.decode(chunk);
      if (got.length < 4) return;
      // The first frame answers the login: good, or bad with a reason.
      if (got.includes('"auth_special"')) {
        clearTimeout(timer);
        socket.off("data", onData);
        socket.off("error", fail);
        if (got.includes('"good"')) resolve(socket);
        else fail(new Error(`login refused: ${got.slice(4, 200)}`));
      }
    };
    socket.on("data", onData);
    socket.once("close", () => fail(new Error("closed by the server before the login answer")));
  });
}

/** One idle client over WebSocket: a text message per frame (PROTOCOL.md §10). */
function openOneWs(url: string, username: string, password: string): Promise<Idle> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url);
    let settled = false;
    const timer = setTimeout(() => fail(new Error(`no answer to the login within ${LOGIN_TIMEOUT_MS} ms`)), LOGIN_TIMEOUT_MS);
    const fail = (err: Error) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      ws.close();
      reject(err);
    };
    ws.onopen = () => {
      const login = { header: { scope: "client", authentication: { username, password } }, payload: { type: "dummy", id: "login", data: null } };
      ws.send(JSON.stringify(login));
    };
    ws.onmessage = (e) => {
      if (settled) return;
      const text = String(e.data);
      if (!text.includes('"auth_special"')) return;
      if (!text.includes('"good"')) return fail(new Error(`login refused: ${text.slice(0, 200)}`));
      settled = true;
      clearTimeout(timer);
      resolve({
        onClose: (fn) => ws.addEventListener("close", fn),
        destroy: () => ws.close(),
      });
    };
    ws.onclose = (e) => fail(new Error(`closed by the server before the login answer (code ${e.code})`));
  });
}

/** An idle client, whatever its transport. */
interface Idle {
  onClose(fn: () => void): void;
  destroy(): void;
}

function idleSocket(socket: Socket): Idle {
  socket.on("error", () => {});
  return { onClose: (fn) => socket.once("close", fn), destroy: () => socket.destroy() };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * How long RSS must hold still to count as settled: longer than a Bun
 * gateway keeps freed memory before giving it back (MIMALLOC_PURGE_DELAY,
 * 1 s; README, "Running"), so what a burst of logins freed is not counted
 * as what the idle connections hold.
 */
const STEADY_MS = 2_000;
const SAMPLE_MS = 500;

/** Waits until the process's RSS stops moving (GC, lazy frees), up to `maxMs`; returns the last reading. */
async function settledRss(pid: number, maxMs: number): Promise<number | null> {
  let last = vmKiB(pid, "VmRSS");
  let steadyFor = 0;
  const deadline = Date.now() + maxMs;
  while (Date.now() < deadline && steadyFor < STEADY_MS) {
    await sleep(SAMPLE_MS);
    const now = vmKiB(pid, "VmRSS");
    if (now === null || last === null) return now;
    steadyFor = Math.abs(now - last) <= Math.max(256, last * 0.005) ? steadyFor + SAMPLE_MS : 0;
    last = now;
  }
  return last;
}

export async function runIdle(opts: IdleOptions): Promise<IdleResult> {
  const { target, count, password } = opts;
  const concurrency = opts.concurrency ?? 256;
  const sources = opts.url === undefined ? sourceAddressesFor(target, count) : [];
  const perSource = sources.length > 0 ? Math.ceil(count / sources.length) : count;
  const sockets: Idle[] = [];
  let failed = 0;
  let dropped = 0;
  let firstError: string | null = null;
  let measuring = true;
  const started = Date.now();

  const openRange = async (from: number, to: number) => {
    let next = from;
    const worker = async () => {
      while (next < to && failed < MAX_FAILURES && Date.now() - started < OPEN_TIMEOUT_MS) {
        const i = next++;
        const source = sources.length > 0 ? sources[Math.floor(i / perSource)] : undefined;
        try {
          const client =
            opts.url === undefined ? idleSocket(await openOne(target, `idle-${i}`, password, source)) : await openOneWs(opts.url, `idle-${i}`, password);
          client.onClose(() => {
            if (measuring) dropped++;
          });
          sockets.push(client);
        } catch (err) {
          failed++;
          firstError ??= `client ${i}${source ? ` from ${source}` : ""}: ${(err as Error).message}`;
        }
        if ((sockets.length + failed) % 1000 === 0) opts.onProgress?.(sockets.length, failed);
      }
    };
    await Promise.all(Array.from({ length: Math.min(concurrency, to - from) }, worker));
  };

  // A few clients first, so code paths and pools are warm before the baseline.
  const warm = Math.min(100, Math.ceil(count / 20));
  await openRange(0, warm);
  const pid = opts.gatewayPid;
  const rssBefore = pid === null ? null : await settledRss(pid, 6_000);
  await openRange(warm, count);
  const openSeconds = (Date.now() - started) / 1000;
  opts.onProgress?.(sockets.length, failed);
  const rssAfter = pid === null ? null : await settledRss(pid, 10_000);
  const peak = pid === null ? null : vmKiB(pid, "VmHWM");
  measuring = false;

  for (const s of sockets) s.destroy();
  const measured = sockets.length - Math.min(warm, sockets.length);
  return {
    requested: count,
    connected: sockets.length,
    failed,
    droppedAfterLogin: dropped,
    firstError,
    sourceAddresses: sources.length > 0 ? sources : opts.url === undefined && target.kind === "unix" ? [] : ["(kernel's choice)"],
    openSeconds: round(openSeconds, 1),
    warmupClients: Math.min(warm, sockets.length),
    gateway:
      pid === null
        ? null
        : {
            rssBeforeKiB: rssBefore,
            rssAfterKiB: rssAfter,
            peakRssKiB: peak,
            bytesPerConnection:
              rssBefore !== null && rssAfter !== null && measured > 0 ? Math.round(((rssAfter - rssBefore) * 1024) / measured) : null,
          },
  };
}
