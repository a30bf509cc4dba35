/**
 * What the bench reads about processes and the machine, from Linux's /proc.
 * Elsewhere every reader returns null, and the report says "n/a".
 * @module
 */
import { spawnSync } from "node:child_process";
import { readdirSync, readFileSync } from "node:fs";
import os from "node:os";

/** Clock ticks per second of /proc/<pid>/stat's utime and stime; 100 on every common Linux build. Asked once, when first needed. */
let clockTicks: number | undefined;
function ticksPerSecond(): number {
  if (clockTicks === undefined) {
    try {
      const n = Number(spawnSync("getconf", ["CLK_TCK"], { encoding: "utf8" }).stdout?.trim());
      clockTicks = Number.isFinite(n) && n > 0 ? n : 100;
    } catch {
      clockTicks = 100;
    }
  }
  return clockTicks;
}

function read(path: string): string | null {
  try {
    return readFileSync(path, "utf8");
  } catch {
    return null;
  }
}

/** User + system CPU seconds the process has used so far. */
export function cpuSeconds(pid: number): number | null {
  const stat = read(`/proc/${pid}/stat`);
  if (stat === null) return null;
  // The command name (field 2) may contain spaces and parentheses: split after its last ")".
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  // fields[0] is field 3 (state), so utime (14) and stime (15) are at 11 and 12.
  const utime = Number(fields[11]);
  const stime = Number(fields[12]);
  if (!Number.isFinite(utime) || !Number.isFinite(stime)) return null;
  return (utime + stime) / ticksPerSecond();
}

/** A `Vm*` line of /proc/<pid>/status in KiB: `VmHWM` (peak resident), `VmRSS` (resident now). */
export function vmKiB(pid: number, field: "VmHWM" | "VmRSS"): number | null {
  const status = read(`/proc/${pid}/status`);
  const m = status && new RegExp(`^${field}:\\s+(\\d+) kB`, "m").exec(status);
  return m ? Number(m[1]) : null;
}

/** Direct children of a process (every thread's children list). */
export function childPids(pid: number): number[] {
  const out: number[] = [];
  let tasks: string[];
  try {
    tasks = readdirSync(`/proc/${pid}/task`);
  } catch {
    return out;
  }
  for (const tid of tasks) {
    const text = read(`/proc/${pid}/task/${tid}/children`);
    if (text) for (const p of text.trim().split(/\s+/)) if (p) out.push(Number(p));
  }
  return out;
}

/** The process's argv, or null when it is gone. */
export function cmdline(pid: number): string[] | null {
  const text = read(`/proc/${pid}/cmdline`);
  return text === null ? null : text.split("\0").filter((s) => s !== "");
}

/** The soft and hard limit on open files, or null. */
export function openFileLimit(pid: number): { soft: number; hard: number } | null {
  const text = read(`/proc/${pid}/limits`);
  const m = text && /^Max open files\s+(\S+)\s+(\S+)/m.exec(text);
  if (!m) return null;
  const num = (s: string) => (s === "unlimited" ? Infinity : Number(s));
  return { soft: num(m[1]!), hard: num(m[2]!) };
}

/**
 * Raises a process's open-file limit to at least `wanted` with `prlimit`
 * (util-linux): the soft limit up to the hard one is always allowed, beyond it
 * only as root. Returns the limit in force afterwards (null off Linux).
 */
export function raiseOpenFileLimit(pid: number, wanted: number): { soft: number; hard: number } | null {
  const now = openFileLimit(pid);
  if (now === null || now.soft >= wanted) return now;
  const hard = Math.max(now.hard, wanted);
  const attempt = (soft: number, hardLimit: number) =>
    spawnSync("prlimit", [`--pid=${pid}`, `--nofile=${soft}:${hardLimit}`], { stdio: "ignore" }).status === 0;
  // Raising the hard limit needs CAP_SYS_RESOURCE; without it, at least take the soft one to the hard.
  if (!attempt(wanted, hard) && now.hard > now.soft) attempt(Math.min(wanted, now.hard), now.hard);
  return openFileLimit(pid);
}

/** The ephemeral port range, which bounds outgoing connections per (source address, destination) pair. */
export function ephemeralPorts(): number {
  const text = read("/proc/sys/net/ipv4/ip_local_port_range");
  const m = text && /(\d+)\s+(\d+)/.exec(text);
  return m ? Number(m[2]) - Number(m[1]) + 1 : 28_232;
}

export interface MachineInfo {
  cpus: number;
  cpuModel: string;
  memoryMiB: number;
  kernel: string;
  /** The 1-minute load average when the run started: anything else running skews the figures. */
  loadAverage: number;
}

export function machineInfo(): MachineInfo {
  const cpuinfo = read("/proc/cpuinfo");
  const model = cpuinfo && /^model name\s*:\s*(.+)$/m.exec(cpuinfo);
  return {
    cpus: os.cpus().length || 1,
    cpuModel: model ? model[1]!.trim() : (os.cpus()[0]?.model ?? "unknown"),
    memoryMiB: Math.round(os.totalmem() / 1024 / 1024),
    kernel: `${os.type()} ${os.release()}`,
    loadAverage: loadAverage(),
  };
}

export function loadAverage(): number {
  const text = read("/proc/loadavg");
  const first = text ? Number(text.split(" ")[0]) : os.loadavg()[0];
  return Math.round((first ?? 0) * 100) / 100;
}

/** CPU and memory of one process over a measured interval. */
export interface ProcessUsage {
  pid: number;
  /** CPU seconds (user + system) used during the measured interval. */
  cpuSeconds: number | null;
  /** cpuSeconds / wall seconds of the interval, as a percentage of one core. */
  cpuPercent: number | null;
  /** VmHWM: the largest resident set the process ever had. */
  peakRssKiB: number | null;
  /** VmRSS at the end of the interval. */
  rssKiB: number | null;
}

/** Marks the start of an interval for a process; `finish` gives its usage over it. */
export function startUsage(pid: number): { finish(wallSeconds: number): ProcessUsage } {
  const before = cpuSeconds(pid);
  return {
    finish(wallSeconds: number): ProcessUsage {
      const after = cpuSeconds(pid);
      const used = before !== null && after !== null ? after - before : null;
      return {
        pid,
        cpuSeconds: used === null ? null : round(used, 2),
        cpuPercent: used === null || wallSeconds <= 0 ? null : round((used / wallSeconds) * 100, 1),
        peakRssKiB: vmKiB(pid, "VmHWM"),
        rssKiB: vmKiB(pid, "VmRSS"),
      };
    },
  };
}

export function round(n: number, digits: number): number {
  const f = 10 ** digits;
  return Math.round(n * f) / f;
}
