/**
 * The few members of the `Deno` namespace the adapter uses, declared
 * structurally: the Deno lib and @types/bun redeclare the same globals, so
 * the project type-checks with Bun and Node types only and reaches Deno
 * through this shape.
 */
export interface DenoAddr {
  transport: "tcp" | "udp" | "unix" | "unixpacket";
  hostname?: string;
  port?: number;
  path?: string;
}

export interface DenoConn {
  readonly remoteAddr: DenoAddr;
  read(buf: Uint8Array): Promise<number | null>;
  write(buf: Uint8Array): Promise<number>;
  closeWrite(): Promise<void>;
  close(): void;
  /** TCP connections only. */
  setNoDelay?(noDelay?: boolean): void;
}

export interface DenoListener extends AsyncIterable<DenoConn> {
  readonly addr: DenoAddr;
  accept(): Promise<DenoConn>;
  close(): void;
}

export interface DenoChildProcess {
  readonly pid: number;
  readonly stdout: ReadableStream<Uint8Array>;
  readonly stderr: ReadableStream<Uint8Array>;
  readonly status: Promise<{ success: boolean; code: number; signal: string | null }>;
  kill(signal?: string): void;
}

export interface DenoHttpServer {
  readonly addr: DenoAddr;
  readonly finished: Promise<void>;
  shutdown(): Promise<void>;
}

export interface DenoNamespace {
  readonly version: { deno: string };
  readonly mainModule: string;
  execPath(): string;
  listen(options: { hostname: string; port: number; transport?: "tcp" } | { path: string; transport: "unix" }): DenoListener;
  connect(options: { hostname: string; port: number; transport?: "tcp" } | { path: string; transport: "unix" }): Promise<DenoConn>;
  connectTls(options: { hostname: string; port: number; caCerts?: string[] }): Promise<DenoConn & { handshake(): Promise<unknown> }>;
  Command: new (
    cmd: string,
    options: {
      args?: string[];
      cwd?: string;
      env?: Record<string, string>;
      stdin?: "null";
      stdout?: "piped";
      stderr?: "piped";
    },
  ) => { spawn(): DenoChildProcess };
  serve(
    options:
      | { hostname: string; port: number; onListen?: (addr: DenoAddr) => void }
      | { path: string; onListen?: (addr: DenoAddr) => void },
    handler: (request: Request) => Response | Promise<Response>,
  ): DenoHttpServer;
  createHttpClient(options: { proxy: { transport: "unix"; path: string } }): { close(): void };
  addSignalListener(signal: string, fn: () => void): void;
  removeSignalListener(signal: string, fn: () => void): void;
  exit(code: number): never;
  readonly errors: Record<string, new (...args: unknown[]) => Error>;
}

/** The global `Deno`; only the Deno adapter calls this. */
export function denoGlobal(): DenoNamespace {
  return (globalThis as unknown as { Deno: DenoNamespace }).Deno;
}
