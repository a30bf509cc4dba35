import { handle as chat } from "../../handlers/chat.ts";
import { handle as echo } from "../../handlers/echo.ts";
import { handle as shout } from "../../handlers/shout.ts";
import type { Runtime } from "../runtime/types.ts";
import { serveHandler, type HandleFunction } from "../sdk/handler.ts";
import { parseCommandArgs, UsageError } from "./args.ts";
import { stopRequests } from "../sdk/stop-requests.ts";

/** The handlers shipped inside bester, by the name `bester handler NAME` takes. */
export const BUNDLED_HANDLER_FUNCTIONS: Readonly<Record<string, HandleFunction>> = Object.freeze({ echo, chat, shout });

const NAMES = Object.keys(BUNDLED_HANDLER_FUNCTIONS).join(", ");

export const HANDLER_HELP = `Usage: bester handler NAME SOCKET [INFORMER]

Runs the bundled message handler NAME on the UNIX socket SOCKET, the way the
gateway starts a handler program. SOCKET defaults to $BESTER_HANDLER_SOCKET.
INFORMER is the gateway's informer socket (else $BESTER_INFORMER_SOCKET):
chat asks it who is online.
A stale socket file is replaced; a live one is refused (exit 1).
SIGTERM or SIGINT closes the socket, removes its file and exits 0.

Handlers:
  echo    sends each message back to its sender             (needs "envelope": true)
  chat    {"to": "bob" | ["bob", ...], "body": "..."}: delivers
          {"from": <sender>, "body": "..."} to each recipient (needs "envelope": true);
          {"who": true}: answers the sender {"online": ["alice", ...]} (needs the informer)
  shout   {"to", "body"}: passes it on to the chat handler in capitals
          (sendHandler "chat")

Options:
  -h, --help            show this help`;

export async function handlerCommand(runtime: Runtime, argv: string[]): Promise<number> {
  const { values, positionals } = parseCommandArgs("handler", argv, { help: { type: "boolean", short: "h" } }, 3);
  if (values.help) {
    console.log(HANDLER_HELP);
    return 0;
  }
  const [name, socketArg] = positionals;
  if (name === undefined) throw new UsageError("handler", `missing the handler NAME: one of ${NAMES}`);
  if (!Object.hasOwn(BUNDLED_HANDLER_FUNCTIONS, name)) {
    throw new UsageError("handler", `unknown handler '${name}': expected one of ${NAMES}`);
  }
  const socket = socketArg ?? (process.env["BESTER_HANDLER_SOCKET"] || undefined);
  if (socket === undefined) {
    throw new UsageError("handler", "missing the SOCKET path (or set BESTER_HANDLER_SOCKET)");
  }

  // stderr, one line per event: the gateway's supervisor logs handler output line by line.
  const log = (line: string) => console.error(`${name}: ${line}`);
  // Listening for stop signals before the socket exists: the gateway counts a
  // handler up once its socket file appears, and may stop it right then.
  let stopRequested!: () => void;
  const stopped = new Promise<void>((resolve) => (stopRequested = resolve));
  const request = stopRequests(
    (signal) => {
      log(`${signal}: closing`);
      stopRequested();
    },
    () => runtime.exit(1), // a second request while closing: stop now
  );
  for (const sig of ["SIGTERM", "SIGINT"] as const) runtime.onSignal(sig, () => request(sig));

  let running;
  try {
    running = await serveHandler({ socket, handle: BUNDLED_HANDLER_FUNCTIONS[name]!, log });
  } catch (err) {
    console.error(`bester handler: ${(err as Error).message}`);
    return 1;
  }
  log(`listening on ${socket}`);
  await stopped;
  await running.close();
  return 0;
}
