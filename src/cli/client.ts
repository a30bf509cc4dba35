import { createInterface } from "node:readline";
import type { Runtime } from "../runtime/types.ts";
import {
  BesterClientError,
  connectClient,
  parseTarget,
  type BesterClient,
  type ClientTarget,
  type ReceivedMessage,
  type StatusReport,
} from "../sdk/client.ts";
import { parseCommandArgs, tlsFlagsOf, UsageError } from "./args.ts";
import { canPrompt, promptHidden } from "./prompt.ts";

const DEFAULT_ADDRESS = "127.0.0.1:2220";

/** How long `client` waits, after /quit or end of input, for the reports of messages still in flight. */
const QUIT_GRACE_MS = 5000;

const CONNECTION_HELP = `  -u, --user NAME       username (required)
  -p, --password PW     password; else $BESTER_PASSWORD; else asked on a terminal
  -c, --connect ADDR    the server: HOST:PORT, [IPV6]:PORT, unix:PATH, or the
                        URL of a WebSocket listener, ws://HOST:PORT/PATH or
                        wss://... (default ${DEFAULT_ADDRESS})
      --tls             speak TLS to a TCP server (a listener with "tls" in its
                        config); its certificate must name HOST
      --ca FILE         PEM file of the CA that signed the server's certificate
                        (implies --tls; default: the system's CAs)
      --ack             acknowledged delivery (PROTOCOL.md §9): what arrives has a
                        seq, and is acknowledged once printed; the gateway keeps
                        it until then, so a lost connection loses nothing`;

export const SEND_HELP = `Usage: bester send --user NAME [options] TYPE [JSON]

Logs in, sends one message of type TYPE with JSON as its data (default null),
and prints its status report as one line of JSON on stdout:
  {"id":"m-1","status":"good"}
  {"id":"m-1","status":"bad","error":{"code":"unknown_type","message":"..."}}
  {"id":"m-1","status":"good","data":{...}}     (reports that carry an answer)
  {"id":"m-1","status":"good","queued":["bob"]} (bob was away: it waits in his inbox)
Exit 0 if the report is good; 1 if it is bad or the connection fails (why, on stderr).

Options:
${CONNECTION_HELP}
  -w, --wait MS         after the report, wait MS milliseconds and print every
                        message delivered to NAME, one JSON line each:
                        {"type":"echo","data":...}   (with --ack also "seq")
                        Messages that waited for NAME come first.
  -h, --help            show this help`;

export const CLIENT_HELP = `Usage: bester client --user NAME [options]

An interactive client: reads lines from stdin, prints what arrives on stdout.

Input:
  @bob,carol some text    sends type "chat" {"to": ["bob", "carol"], "body": "some text"}
  /who                    asks the chat handler who is online (type "chat" {"who": true})
  /send TYPE [JSON]       sends any message (data default null)
  /quit                   closes the connection (so does end of input)
  /help                   shows this input summary

Output:
  alice: hi               a chat message delivered to you (what waited for
                          you while you were away comes first, after login)
  online: alice, bob      the chat handler's answer to /who
  [echo] {"n":1}          any other delivered message: [type] data as JSON
  ! m-3 unknown_type: ... a "bad" status report: id, error code, message
  = m-4 {"username":...}  a "good" status report that carries an answer (builtin whoami, types)
  ~ m-5 kept for bob      a "good" report for users who were away: it waits in their inbox
  ! closed: CODE: MESSAGE the server closed the connection with a fatal error

Exit 0 after /quit or end of input (once sent messages are answered);
1 if the connection fails or the server ends it with a fatal error.

Options:
${CONNECTION_HELP}
  -h, --help            show this help`;

const INPUT_HELP = `@USER[,USER...] TEXT   chat    |   /who   who is online    |   /send TYPE [JSON]   any message   |   /quit`;

const CONNECTION_OPTIONS = {
  user: { type: "string", short: "u" },
  password: { type: "string", short: "p" },
  connect: { type: "string", short: "c" },
  tls: { type: "boolean" },
  ca: { type: "string" },
  ack: { type: "boolean" },
  help: { type: "boolean", short: "h" },
} as const;

// ---------------------------------------------------------------------------
// Shared: target, password, login

/** A WebSocket listener's URL, or a socket address. */
function targetOf(command: string, text: string | undefined): ClientTarget | { url: string } {
  if (text !== undefined && /^wss?:\/\//i.test(text)) return { url: text };
  try {
    return parseTarget(text ?? DEFAULT_ADDRESS);
  } catch (err) {
    throw new UsageError(command, `--connect: ${(err as Error).message}`);
  }
}

async function passwordOf(command: string, user: string, flag: string | undefined): Promise<string> {
  if (flag !== undefined) return flag;
  const fromEnv = process.env["BESTER_PASSWORD"];
  if (fromEnv) return fromEnv;
  if (canPrompt()) {
    return await promptHidden(`password for ${user}: `);
  }
  throw new UsageError(command, "no password: give --password, set BESTER_PASSWORD, or run on a terminal to be asked");
}


type ConnectionValues = { user?: string; password?: string; connect?: string; tls?: boolean; ca?: string; ack?: boolean };

async function login(command: string, values: ConnectionValues): Promise<BesterClient> {
  const user = values.user;
  if (user === undefined || user.trim() === "") throw new UsageError(command, "--user NAME is required");
  const where = targetOf(command, values.connect);
  const tls = tlsFlagsOf(command, values);
  if (tls && "path" in where) throw new UsageError(command, "--tls and --ca are for a TCP address, not a UNIX socket");
  if (tls && "url" in where) throw new UsageError(command, "--tls and --ca are for a TCP address; a wss:// URL speaks TLS and is checked against the system's CAs");
  const password = await passwordOf(command, user, values.password);
  const to = "url" in where ? { url: where.url } : { target: where };
  const client = await connectClient({ ...to, username: user, password, ...(tls ? { tls } : {}), ...(values.ack ? { ack: true } : {}) });
  if (values.ack && !client.delivery.ack) console.error(`bester ${command}: the server does not keep messages (delivery.store is none): original delivery`);
  return client;
}

function describeFailure(err: unknown): string {
  return err instanceof BesterClientError || err instanceof Error ? err.message : String(err);
}

// ---------------------------------------------------------------------------
// bester send

export async function sendCommand(_runtime: Runtime, argv: string[]): Promise<number> {
  const { values, positionals } = parseCommandArgs(
    "send",
    argv,
    { ...CONNECTION_OPTIONS, wait: { type: "string", short: "w" } },
    2,
  );
  if (values.help) {
    console.log(SEND_HELP);
    return 0;
  }
  const [type, json] = positionals;
  if (type === undefined) throw new UsageError("send", "missing the message TYPE");
  let data: unknown = null;
  if (json !== undefined) {
    try {
      data = JSON.parse(json);
    } catch (err) {
      throw new UsageError("send", `the JSON argument is not valid JSON: ${(err as Error).message}`);
    }
  }
  let waitMs = 0;
  if (values.wait !== undefined) {
    waitMs = Number(values.wait);
    if (!/^\d+$/.test(values.wait) || !Number.isSafeInteger(waitMs)) {
      throw new UsageError("send", `--wait expects milliseconds (a whole number), got '${values.wait}'`);
    }
  }

  let client: BesterClient;
  try {
    client = await login("send", values);
  } catch (err) {
    if (err instanceof UsageError) throw err;
    console.error(`bester send: ${describeFailure(err)}`);
    return 1;
  }

  // Messages that arrive before the report are held back, so the report is always the first line.
  const early: string[] = [];
  let reportPrinted = false;
  const pump =
    values.wait === undefined
      ? Promise.resolve()
      : (async () => {
          for await (const message of client.messages()) {
            const line = JSON.stringify(message);
            if (reportPrinted) console.log(line);
            else early.push(line);
          }
        })();

  let report: StatusReport;
  try {
    report = await client.send(type, data);
  } catch (err) {
    console.error(`bester send: ${describeFailure(err)}`);
    await client.close();
    return 1;
  }
  console.log(JSON.stringify(report));
  reportPrinted = true;
  for (const line of early.splice(0)) console.log(line);
  if (waitMs > 0) {
    let timer: ReturnType<typeof setTimeout> | undefined;
    await Promise.race([client.closed, new Promise((resolve) => (timer = setTimeout(resolve, waitMs)))]);
    clearTimeout(timer);
  }
  await client.close();
  await pump;
  return report.status === "good" ? 0 : 1;
}

// ---------------------------------------------------------------------------
// bester client

/** One line of what arrives, as `client` prints it. */
export function formatReceived(message: ReceivedMessage): string {
  const { type, data } = message;
  if (type === "chat" && typeof data === "object" && data !== null) {
    const { from, body, online } = data as Record<string, unknown>;
    if (typeof from === "string" && typeof body === "string") return `${from}: ${body}`;
    if (Array.isArray(online)) return `online: ${online.join(", ")}`;
  }
  return `[${type}] ${JSON.stringify(data)}`;
}

type Parsed = { send: { type: string; data: unknown } } | { quit: true } | { help: true } | { problem: string } | null;

/** Reads one input line of `client`; null for a blank line. */
export function parseInputLine(line: string): Parsed {
  const text = line.trim();
  if (text === "") return null;
  if (text === "/quit") return { quit: true };
  if (text === "/help") return { help: true };
  if (text === "/who") return { send: { type: "chat", data: { who: true } } };
  if (text.startsWith("@")) {
    const m = /^@(\S+)\s+(\S[\s\S]*)$/.exec(text);
    const to = m ? m[1]!.split(",").filter((u) => u !== "") : [];
    if (!m || to.length === 0) return { problem: "a chat line is @USER[,USER...] TEXT" };
    return { send: { type: "chat", data: { to, body: m[2]! } } };
  }
  if (text === "/send" || text.startsWith("/send ")) {
    const m = /^\/send\s+(\S+)(?:\s+([\s\S]*))?$/.exec(text);
    if (!m) return { problem: "usage: /send TYPE [JSON]" };
    if (m[2] === undefined) return { send: { type: m[1]!, data: null } };
    try {
      return { send: { type: m[1]!, data: JSON.parse(m[2]) } };
    } catch (err) {
      return { problem: `not valid JSON: ${(err as Error).message}` };
    }
  }
  return { problem: `not understood; ${INPUT_HELP}` };
}

export async function clientCommand(_runtime: Runtime, argv: string[]): Promise<number> {
  const { values } = parseCommandArgs("client", argv, CONNECTION_OPTIONS, 0);
  if (values.help) {
    console.log(CLIENT_HELP);
    return 0;
  }
  let client: BesterClient;
  try {
    client = await login("client", values);
  } catch (err) {
    if (err instanceof UsageError) throw err;
    console.error(`bester client: ${describeFailure(err)}`);
    return 1;
  }

  const pump = (async () => {
    for await (const message of client.messages()) console.log(formatReceived(message));
  })();

  const inFlight = new Set<Promise<unknown>>();
  const send = (type: string, data: unknown) => {
    const done = client.send(type, data).then(
      (report) => {
        if (report.status === "bad") {
          const why = report.error ? `${report.error.code}: ${report.error.message}` : "bad: no reason given";
          console.log(`! ${report.id} ${why}`);
        } else if (report.data !== undefined) {
          console.log(`= ${report.id} ${JSON.stringify(report.data)}`);
        } else if (report.queued !== undefined) {
          console.log(`~ ${report.id} kept for ${report.queued.join(", ")}`);
        }
      },
      (err) => {
        // A closed connection is reported once, below; anything else belongs to this line.
        if (!(err instanceof BesterClientError)) console.error(`! ${describeFailure(err)}`);
      },
    );
    inFlight.add(done);
    void done.finally(() => inFlight.delete(done));
  };

  const input = createInterface({ input: process.stdin, terminal: false });
  const quit = new Promise<void>((resolve) => {
    input.on("line", (line) => {
      const parsed = parseInputLine(line);
      if (parsed === null) return;
      if ("quit" in parsed) resolve();
      else if ("help" in parsed) console.error(INPUT_HELP);
      else if ("problem" in parsed) console.error(`! ${parsed.problem}`);
      else send(parsed.send.type, parsed.send.data);
    });
    input.on("close", () => resolve());
  });

  const ended = await Promise.race([quit.then(() => "quit" as const), client.closed]);
  input.close();
  if (ended === "quit") {
    // Input may end right after the last line: let its reports arrive before closing.
    let timer: ReturnType<typeof setTimeout> | undefined;
    await Promise.race([
      Promise.allSettled([...inFlight]),
      new Promise((resolve) => (timer = setTimeout(resolve, QUIT_GRACE_MS))),
    ]);
    clearTimeout(timer);
    const info = await client.close();
    await pump;
    if (info.fatal) console.log(`! closed: ${info.fatal.code}: ${info.fatal.message}`);
    return info.fatal ? 1 : 0;
  }
  await pump;
  if (ended.fatal) {
    console.log(`! closed: ${ended.fatal.code}: ${ended.fatal.message}`);
    return 1;
  }
  if (ended.error) {
    console.log(`! closed: ${ended.error.message}`);
    return 1;
  }
  console.log("! closed by the server");
  return 0;
}
