/** Help texts; kept beside each other so `--help` and the README can be compared at a glance. */
export const MAIN_HELP = `bester — a gateway for the Bester message protocol

Usage:
  bester serve [--config FILE | FILE] [options]   run the gateway
  bester check [--config FILE | FILE]             validate a config file and print the effective config
  bester ctl COMMAND [--config FILE]              status, clients, cluster, handlers, reload, disconnect, shutdown
                                                  of a running gateway (through its control API)
  bester passwd add|remove|list USER [--config F] manage accounts in the configured store
  bester client --user NAME [options]             an interactive terminal client
  bester send --user NAME TYPE [JSON] [options]   send one message and print its status report
  bester handler NAME SOCKET [INFORMER]           run a bundled handler (echo, chat, shout)
  bester bench [options]                          measure msgs/s and latency through a gateway (--idle N: memory per client; --replay N: a login's wait for N kept messages)
  bester version                                  print the version and runtime
  bester help [COMMAND]                           show help for a command

Run 'bester COMMAND --help' for the options of a command.
Without a config file, 'serve' starts on the embedded default: loopback listeners only.`;

export const SERVE_HELP = `Usage: bester serve [--config FILE | FILE] [options]

Runs the gateway. FILE is a server.conf in the original Bester format (JSON),
optionally with bester's additions. Without one, the embedded default is used:
tcp4 127.0.0.1:2220, tcp6 [::1]:2221, a UNIX socket in the run directory, and
WebSocket ws://127.0.0.1:2222/bester, whose port also serves the web chat
(http://127.0.0.1:2222/chat) and the client SDK for browsers (/bester-client.js).

Options:
  -c, --config FILE     config file (the original positional form works too)
      --log-level LVL   debug | info | warn | error (overrides log.level)
      --log-format FMT  text | json (overrides log.format)
  -h, --help            show this help

The HTTP control API listens on 127.0.0.1:2280 under the embedded default;
with a config file, on control.address/control.port when it gives either,
else on a UNIX socket (mode 0600) named after the file, beside the client
socket. 'bester ctl COMMAND --config FILE' finds it from the same file.
On a TCP address it also serves a status page for a browser at /.

Signals: SIGINT and SIGTERM stop the gateway gracefully (exit 0); SIGHUP
reloads the config file (what cannot change live is refused, and logged).

Environment:
  BESTER_CONTROL_TOKEN   the control API's token when control.token is not set
  BESTER_REDIS_PASSWORD  the Redis password when database.redis.password is not set

On Bun, when MIMALLOC_PURGE_DELAY is not set, serve first starts
itself again in place (same pid) with MIMALLOC_PURGE_DELAY=1000: freed memory
is given back to the system after 1 s instead of Bun's 100 ms, which under
load spares a page fault per 4 KiB of every read buffer. Handlers it starts
inherit it. Set the variable yourself to choose another delay (100 is Bun's
own); on Windows Bun's default stays. Deno has no such setting: on Linux
(glibc) with FFI allowed (--allow-all, as 'deno task serve' runs it), serve
asks glibc every 30 s to give back the memory it keeps freed (malloc_trim).`;

export const CHECK_HELP = `Usage: bester check [--config FILE | FILE]

Validates FILE. On success prints the effective config (defaults filled in,
paths resolved, secrets shown as "***") as JSON on stdout and exits 0; it is
itself a valid config file. Otherwise prints every problem as
"path: message" on stderr and exits 1.
Without FILE, checks and prints the embedded default.

Host names in network.tcp4/tcp6.address and control.address are resolved:
what is allowed only on loopback (the "open" account store, a control API
without a token) is allowed only when every address a name resolves to is
loopback (127.0.0.0/8, ::1). serve and a reload check the same.

Options:
  -c, --config FILE     config file
  -h, --help            show this help`;

export const VERSION_HELP = `Usage: bester version

Prints the bester version and the runtime it runs on.`;
