/**
 * The informer UNIX socket (PROTOCOL.md §7): handlers ask the gateway who is
 * connected and what it is. Connections are persistent; each request frame
 * gets one reply frame, in order. A bad request (not JSON, wrong shape,
 * unknown command) gets status "1" and the connection stays usable.
 *
 * The socket file is readable and writable by the gateway's user only: it is
 * bound inside a fresh private directory, restricted, and only then moved to
 * its path, so there is no moment at which another user could connect.
 * @module
 */
import { chmod, lstat, mkdtemp, rename, rmdir, unlink } from "node:fs/promises";
import { dirname, join } from "node:path";
import { INFORMER_MAX_CONNECTIONS, MAX_UNIX_SOCKET_PATH_BYTES } from "../config/defaults.ts";
import type { Logger } from "../log/logger.ts";
import { encodeFrame, FrameDecoder } from "../protocol/frame.ts";
import { ErrorCodes } from "../protocol/reports.ts";
import type { Conn, Listener, Runtime } from "../runtime/types.ts";
import { claimUnixPath } from "../runtime/unix-path.ts";
import { answerInformer, type InformerReply, type InformerView } from "./commands.ts";

/** How long the stale-socket probe waits for a live informer to accept. */
const PROBE_TIMEOUT_MS = 500;
/** Owner read/write only. */
const SOCKET_MODE = 0o600;

export interface InformerDeps {
  runtime: Runtime;
  log: Logger;
  view: InformerView;
  /** Read per connection, so a reload applies to new ones. */
  limits(): { maxFrameBytes: number; maxPendingBytes: number; maxJsonDepth: number };
}

export class InformerService {
  #listener: Listener | undefined;
  #path: string | undefined;
  #inode: number | undefined;
  #conns = new Set<Conn>();

  constructor(private readonly deps: InformerDeps) {}

  /** The socket path while serving. */
  get path(): string | undefined {
    return this.#path;
  }

  get connections(): number {
    return this.#conns.size;
  }

  /** Binds the socket at `path` (mode 0600); a stale file from a crash is replaced, a live one refused. */
  async start(path: string): Promise<void> {
    try {
      await this.#bind(path);
    } catch (err) {
      throw new Error(`informer: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
    }
  }

  async #bind(path: string): Promise<void> {
    const { runtime } = this.deps;
    await claimUnixPath(path, (p) => this.#answers(p));
    const events = {
      open: (conn: Conn) => this.#open(conn),
      data: (conn: Conn, chunk: Uint8Array) => this.#data(conn, chunk),
      close: (conn: Conn) => {
        this.#conns.delete(conn);
        this.#decoders.delete(conn);
      },
    };
    const dir = await mkdtemp(join(dirname(path), ".bi-")); // created 0700
    const staging = join(dir, "s");
    try {
      if (new TextEncoder().encode(staging).length <= MAX_UNIX_SOCKET_PATH_BYTES) {
        this.#listener = await runtime.listen({ kind: "unix", path: staging }, events);
        await chmod(staging, SOCKET_MODE);
        await rename(staging, path);
      } else {
        // The private directory's path is too long to bind in: bind in place, restricted at once.
        this.deps.log.warn("informer socket bound in place: its directory's path is too long for a private staging directory", { path });
        this.#listener = await runtime.listen({ kind: "unix", path }, events);
        await chmod(path, SOCKET_MODE);
      }
    } catch (err) {
      await this.#listener?.close();
      this.#listener = undefined;
      throw err;
    } finally {
      await rmdir(dir).catch(() => {});
    }
    this.#path = path;
    this.#inode = (await lstat(path)).ino;
  }

  /** Stops accepting, closes every informer connection, removes the socket file it created. */
  async stop(): Promise<void> {
    const listener = this.#listener;
    this.#listener = undefined;
    if (!listener) return;
    await listener.close();
    for (const conn of [...this.#conns]) conn.end();
    const path = this.#path!;
    try {
      const now = await lstat(path);
      // Never a socket some other process put there since.
      if (now.isSocket() && now.ino === this.#inode) await unlink(path);
    } catch {
      // already gone
    }
  }

  #decoders = new Map<Conn, { decoder: FrameDecoder; reply(r: InformerReply): void }>();

  #open(conn: Conn): void {
    const { log, view } = this.deps;
    const limits = this.deps.limits();
    const reply = (r: InformerReply) => {
      conn.write(encodeFrame(r));
      // A handler that asks and never reads would grow our memory: cut it off.
      if (conn.pendingBytes > limits.maxPendingBytes) {
        log.warn("informer connection closed: not reading its replies", { pendingBytes: conn.pendingBytes });
        conn.destroy();
      }
    };
    if (this.#conns.size >= INFORMER_MAX_CONNECTIONS) {
      reply({
        status: "1",
        data: null,
        error: { code: ErrorCodes.tooManyConnections, message: `the informer is at its limit of ${INFORMER_MAX_CONNECTIONS} connections` },
      });
      conn.end();
      return;
    }
    this.#conns.add(conn);
    const decoder = new FrameDecoder(
      limits.maxFrameBytes,
      (value) => {
        if (!this.#conns.has(conn)) return;
        let answered: { reply: InformerReply; quit: boolean };
        try {
          answered = answerInformer(value, view);
        } catch (err) {
          answered = { reply: { status: "1", data: null, error: { code: ErrorCodes.internal, message: String(err) } }, quit: false };
        }
        reply(answered.reply);
        if (answered.quit) {
          this.#conns.delete(conn);
          conn.end();
        }
      },
      // Not JSON: that request fails, the connection goes on with the next frame.
      {
        onBadBody: (err) => reply({ status: "1", data: null, error: { code: err.code, message: err.message } }),
        maxDepth: limits.maxJsonDepth,
      },
    );
    this.#decoders.set(conn, { decoder, reply });
  }

  #data(conn: Conn, chunk: Uint8Array): void {
    const state = this.#decoders.get(conn);
    if (!state) return;
    const err = state.decoder.push(chunk);
    // Only a frame above the limit fails the decoder: say so, and close rather than read it.
    if (err && this.#conns.delete(conn)) {
      this.#decoders.delete(conn);
      state.reply({ status: "1", data: null, error: { code: err.code, message: err.message } });
      conn.end();
    }
  }

  /** True if something accepts connections on `path` (a live informer of another gateway). */
  async #answers(path: string): Promise<boolean> {
    try {
      const probe = await this.deps.runtime.connect({ kind: "unix", path }, { data() {}, close() {} }, PROBE_TIMEOUT_MS);
      probe.destroy();
      return true;
    } catch {
      return false;
    }
  }
}
