/**
 * The bench report: its JSON shape (`--json`) and the tables printed for people.
 * @module
 */
import type { IdleResult } from "./idle.ts";
import type { ReplayResult } from "./replay.ts";
import type { LoadResult } from "./load.ts";
import type { MachineInfo, ProcessUsage } from "./proc.ts";
import { formatProfile, type ProfileSummary } from "./profile.ts";

export type Scenario = "dummy" | "per-message" | "persistent";

/** What the load generator measured (LoadResult, less its raw delivery count), plus the run's setup and each process's use. */
export interface RunReport extends Omit<LoadResult, "measuredMessages"> {
  /** One of the bench's scenarios; a comparison (bench/compare/) puts the other system's name here. */
  scenario: Scenario | (string & {});
  /** Requested size of each message's data (JSON bytes). */
  size: number;
  warmupSeconds: number;
  durationSeconds: number;
  /** Over the measured interval; null for a gateway the bench did not start. */
  gateway: ProcessUsage | null;
  handler: ProcessUsage | null;
  loadGenerator: ProcessUsage | null;
  /** With --cpu-prof: where the gateway's and the relay handler's time went. */
  profile?: ProfileSummary;
  handlerProfile?: ProfileSummary;
  /** bench --cluster: the nodes started; `gateway` above is the senders' node, this the receivers', and Redis's use (when the bench started it). */
  cluster?: { nodes: number; receiverGateway: ProcessUsage | null; redis: ProcessUsage | null };
}

/** A run's report: what the load generator measured, plus how the run was set up and what each process used. */
export function runReport(
  setup: { scenario: RunReport["scenario"]; size: number; warmupSeconds: number; durationSeconds: number },
  result: LoadResult,
  usage: { gateway: ProcessUsage | null; handler: ProcessUsage | null; loadGenerator: ProcessUsage | null },
): RunReport {
  const { measuredMessages: _counted, ...measured } = result;
  return { ...setup, ...measured, ...usage };
}

export interface BenchReport {
  bester: string;
  runtime: string;
  machine: MachineInfo;
  /** Start-up settings of the runtime this bench ran with (Runtime.serverSettings); what it starts inherits them. */
  settings: Record<string, string>;
  /** "started": a gateway per run, started by the bench; else the address given with --connect. */
  gateway: { started: true; listener: string } | { started: false; address: string; tls?: true };
  /** Which processes did what, for the reader of the figures. */
  processes: string;
  /** Receivers asked for acknowledged delivery (--ack). */
  acknowledged: boolean;
  runs: RunReport[];
  idle?: IdleResult;
  /** --replay: N messages kept for a user who was away, and its next login. */
  replay?: ReplayResult;
}

const num = (n: number) => n.toLocaleString("en-US");
const ms = (n: number | null) => (n === null ? "-" : n < 10 ? n.toFixed(2) : n < 100 ? n.toFixed(1) : n.toFixed(0));
const pct = (u: ProcessUsage | null) => (u?.cpuPercent == null ? "n/a" : `${u.cpuPercent.toFixed(0)}%`);
const mib = (kib: number | null | undefined) => (kib == null ? "n/a" : `${(kib / 1024).toFixed(1)} MiB`);

/** CPU microseconds per message delivered in the measured interval. */
function cpuPerMessage(r: RunReport, u: ProcessUsage | null): string {
  return u?.cpuSeconds == null || r.latencyMs.count === 0 ? "n/a" : ((u.cpuSeconds * 1e6) / r.latencyMs.count).toFixed(1);
}

function table(header: string[], rows: string[][], leftColumns = 1): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (cells: string[]) =>
    cells.map((c, i) => (i < leftColumns ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join("  ").trimEnd();
  return [line(header), ...rows.map(line)].join("\n");
}

export function formatHeader(
  report: Pick<BenchReport, "bester" | "runtime" | "machine" | "settings" | "gateway" | "processes"> & { acknowledged?: boolean },
): string {
  const m = report.machine;
  const where = report.gateway.started
    ? `a gateway started by the bench for each run (${report.gateway.listener} on loopback)`
    : `the gateway at ${report.gateway.address}${report.gateway.tls ? ", over TLS" : ""}`;
  return [
    `bester bench: bester ${report.bester} on ${report.runtime}; ${m.cpus} CPUs (${m.cpuModel}), ${(m.memoryMiB / 1024).toFixed(1)} GiB; load average ${m.loadAverage} at start`,
    `runtime settings: ${formatSettings(report.settings)}`,
    `target: ${where}`,
    `processes: ${report.processes}`,
    ...(report.acknowledged ? ["delivery: acknowledged (receivers ask for it and acknowledge every 32 messages)"] : []),
  ].join("\n");
}

/** `K=V K=V`, or `none` when the runtime has none. */
export function formatSettings(settings: Record<string, string>): string {
  const pairs = Object.entries(settings).map(([k, v]) => `${k}=${v}`);
  return pairs.length > 0 ? pairs.join(" ") : "none";
}

export function formatRuns(runs: RunReport[]): string {
  if (runs.length === 0) return "";
  const main = table(
    ["scenario", "pairs", "size", "window", "msgs/s", "p50 ms", "p90 ms", "p99 ms", "max ms", "sent", "received", "lost", "dup"],
    runs.map((r) => [
      r.scenario,
      String(r.pairs),
      String(r.size),
      String(r.window),
      num(r.messagesPerSecond),
      ms(r.latencyMs.p50),
      ms(r.latencyMs.p90),
      ms(r.latencyMs.p99),
      ms(r.latencyMs.max),
      num(r.sent),
      num(r.received),
      num(r.lost),
      num(r.duplicated),
    ]),
  );
  const resources = table(
    ["scenario", "pairs", "size", "gateway CPU", "µs/msg", "peak RSS", "handler CPU", "µs/msg", "peak RSS", "load gen CPU", "µs/msg"],
    runs.map((r) => {
      const noHandler = r.scenario === "dummy";
      return [
        r.scenario,
        String(r.pairs),
        String(r.size),
        pct(r.gateway),
        cpuPerMessage(r, r.gateway),
        mib(r.gateway?.peakRssKiB),
        noHandler ? "-" : pct(r.handler),
        noHandler ? "-" : cpuPerMessage(r, r.handler),
        noHandler ? "-" : mib(r.handler?.peakRssKiB),
        pct(r.loadGenerator),
        cpuPerMessage(r, r.loadGenerator),
      ];
    }),
  );
  const clustered = runs.filter((r) => r.cluster !== undefined);
  const clusterTable =
    clustered.length === 0
      ? []
      : [
          "",
          "Cluster runs: the receivers' node and Redis over the measured interval (the senders' node is the gateway above).",
          table(
            ["scenario", "pairs", "size", "receivers' node CPU", "µs/msg", "peak RSS", "redis CPU", "µs/msg"],
            clustered.map((r) => [
              r.scenario,
              String(r.pairs),
              String(r.size),
              pct(r.cluster!.receiverGateway),
              cpuPerMessage(r, r.cluster!.receiverGateway),
              mib(r.cluster!.receiverGateway?.peakRssKiB),
              pct(r.cluster!.redis),
              cpuPerMessage(r, r.cluster!.redis),
            ]),
          ),
        ];
  const notes: string[] = [];
  for (const r of runs) {
    for (const p of r.problems) notes.push(`  ${r.scenario} ${r.pairs}x${r.size}: ${p}`);
  }
  const profiles = runs.flatMap((r) => [
    ...(r.profile ? [`${r.scenario} ${r.pairs}x${r.size}, gateway: ${formatProfile(r.profile)}`] : []),
    ...(r.handlerProfile ? [`${r.scenario} ${r.pairs}x${r.size}, relay handler: ${formatProfile(r.handlerProfile)}`] : []),
  ]);
  return [
    main,
    "",
    "Over the measured interval: CPU as a share of one core, and CPU time per delivered message (µs/msg);",
    "peak RSS: VmHWM, the whole process lifetime.",
    resources,
    ...clusterTable,
    ...(notes.length > 0 ? ["", "problems:", ...notes] : []),
    ...(profiles.length > 0 ? ["", ...profiles] : []),
  ].join("\n");
}

export function formatIdle(idle: IdleResult): string {
  const g = idle.gateway;
  const perConn = g?.bytesPerConnection == null ? "n/a" : `${num(g.bytesPerConnection)} bytes (${(g.bytesPerConnection / 1024).toFixed(2)} KiB)`;
  return [
    `idle clients: ${num(idle.connected)} of ${num(idle.requested)} logged in (${num(idle.failed)} failed, ${num(idle.droppedAfterLogin)} dropped later) in ${idle.openSeconds} s`,
    `  source addresses: ${idle.sourceAddresses.length > 0 ? idle.sourceAddresses.join(", ") : "n/a (UNIX socket)"}`,
    ...(idle.limitedBy ? [`  limited: ${idle.limitedBy}`] : []),
    ...(idle.firstError ? [`  first failure: ${idle.firstError}`] : []),
    ...(idle.gatewayExit ? [`  ${idle.gatewayExit}`] : []),
    `  gateway RSS: ${mib(g?.rssBeforeKiB)} after ${idle.warmupClients} clients, ${mib(g?.rssAfterKiB)} with all; peak ${mib(g?.peakRssKiB)}`,
    `  RSS per idle connection: ${perConn}`,
  ].join("\n");
}

export function formatReplay(r: ReplayResult): string {
  const m = r.median;
  return [
    `replay of ${num(r.messages)} queued messages of ${num(r.size)} B at a login (${r.acknowledged ? "acknowledging" : "original"} session), ` +
      `median of ${r.rounds.length} rounds:`,
    `  from dialling: first message after ${ms(m.firstMs)} ms, last after ${ms(m.lastMs)} ms (${num(m.messagesPerSecond)} msgs/s)`,
    `  every round's last message: ${r.rounds.map((x) => `${ms(x.lastMs)} ms`).join(", ")}`,
    `  queueing them took ${ms(m.queueMs)} ms (sent through the relay handler, each reported good with "queued")`,
  ].join("\n");
}
