/**
 * Reads a `.cpuprofile` (the Chrome DevTools format that `bun --cpu-prof` and
 * `deno run --cpu-prof` write) and says where the time went: per function
 * (self time: samples whose top frame it is; total time: samples with it
 * anywhere on the stack), and per area (this project's code, dependencies,
 * the runtime's own built-ins, garbage collection, idle).
 * @module
 */
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";

interface CallFrame {
  functionName: string;
  url: string;
  lineNumber: number;
  columnNumber?: number;
}

interface ProfileNode {
  id: number;
  callFrame: CallFrame;
  hitCount?: number;
  children?: number[];
}

interface CpuProfile {
  nodes: ProfileNode[];
  startTime: number;
  endTime: number;
  samples?: number[];
  timeDeltas?: number[];
}

export type Area = "project" | "dependencies" | "runtime" | "gc" | "idle";

export interface HotSpot {
  /** `src/server/session.ts:onData:123` (path relative to the repo; line 1-based). */
  where: string;
  area: Area;
  /** Percent of busy (non-idle) samples. */
  selfPercent: number;
  totalPercent: number;
  /** For a function outside this project: the project function that most often called it (nearest on the stack), and that share of busy samples. */
  calledFrom?: { where: string; percent: number };
}

export interface ProfileSummary {
  file: string;
  /** Wall time the profile covers (the whole process: start-up and shutdown too). */
  seconds: number;
  /** Samples taken while the process was busy (not idle); the percentages are of these. */
  busySamples: number;
  /** Percent of busy time by area (self time). */
  areas: Record<Area, number>;
  /** This project's functions by self time, largest first. */
  projectBySelf: HotSpot[];
  /** This project's functions by total time (their callees included), largest first. */
  projectByTotal: HotSpot[];
  /** Any function by self time, largest first (runtime built-ins and GC included). */
  allBySelf: HotSpot[];
}

/** The repository root (src/bench/ is two levels down), for relative paths. */
const ROOT = (() => {
  try {
    return fileURLToPath(new URL("../../", import.meta.url).href);
  } catch {
    return "";
  }
})();

function relative(url: string): string {
  let path = url;
  if (path.startsWith("file://")) {
    try {
      path = fileURLToPath(path);
    } catch {
      // keep the URL
    }
  }
  if (ROOT && path.startsWith(ROOT)) return path.slice(ROOT.length);
  return path;
}

function areaOf(frame: CallFrame): Area {
  const name = frame.functionName;
  if (name === "(idle)") return "idle";
  if (name === "(garbage collector)" || name === "(GC)") return "gc";
  const path = relative(frame.url);
  if (path.includes("node_modules/")) return "dependencies";
  if (/^(src|handlers)\//.test(path)) return "project";
  return "runtime";
}

function label(frame: CallFrame): string {
  const name = frame.functionName || "(anonymous)";
  if (!frame.url) return name;
  return `${relative(frame.url)}:${name}:${frame.lineNumber + 1}`;
}

export function summariseProfile(file: string, top = 15): ProfileSummary {
  const profile = JSON.parse(readFileSync(file, "utf8")) as CpuProfile;
  const byId = new Map<number, ProfileNode>();
  const parent = new Map<number, number>();
  for (const node of profile.nodes) {
    byId.set(node.id, node);
    for (const c of node.children ?? []) parent.set(c, node.id);
  }

  // Weight per node: its sample count. Not the time deltas: JavaScriptCore (Bun) takes no
  // samples while the thread waits for I/O, so a delta after a wait would credit the wait
  // to whatever ran next. V8 (Deno) does sample idle time, as "(idle)", left out below.
  const weightOf = new Map<number, number>();
  const samples = profile.samples ?? [];
  if (samples.length > 0) {
    for (const id of samples) weightOf.set(id, (weightOf.get(id) ?? 0) + 1);
  } else {
    for (const node of profile.nodes) weightOf.set(node.id, node.hitCount ?? 0);
  }

  const areaWeight: Record<Area, number> = { project: 0, dependencies: 0, runtime: 0, gc: 0, idle: 0 };
  const selfBy = new Map<string, { us: number; area: Area }>();
  const totalBy = new Map<string, number>();
  /** Outside functions -> nearest project caller -> samples. */
  const callers = new Map<string, Map<string, number>>();
  for (const [id, us] of weightOf) {
    if (us === 0) continue;
    const node = byId.get(id)!;
    const area = areaOf(node.callFrame);
    areaWeight[area] += us;
    const key = label(node.callFrame);
    const entry = selfBy.get(key) ?? { us: 0, area };
    entry.us += us;
    selfBy.set(key, entry);
    // Total time: once per distinct function on this node's stack.
    const onStack = new Set<string>();
    for (let at: number | undefined = id; at !== undefined; at = parent.get(at)) {
      const frame = byId.get(at)!.callFrame;
      if (areaOf(frame) === "project") onStack.add(label(frame));
    }
    for (const k of onStack) totalBy.set(k, (totalBy.get(k) ?? 0) + us);
    if (area !== "project") {
      let at = parent.get(id);
      while (at !== undefined && areaOf(byId.get(at)!.callFrame) !== "project") at = parent.get(at);
      if (at !== undefined) {
        const from = label(byId.get(at)!.callFrame);
        const m = callers.get(key) ?? new Map<string, number>();
        m.set(from, (m.get(from) ?? 0) + us);
        callers.set(key, m);
      }
    }
  }

  const busy = Object.values(areaWeight).reduce((a, b) => a + b, 0) - areaWeight.idle;
  const pct = (us: number) => (busy > 0 ? Math.round((us / busy) * 1000) / 10 : 0);
  const spot = (where: string, area: Area): HotSpot => {
    const h: HotSpot = { where, area, selfPercent: pct(selfBy.get(where)?.us ?? 0), totalPercent: pct(totalBy.get(where) ?? 0) };
    const from = [...(callers.get(where) ?? [])].sort((a, b) => b[1] - a[1])[0];
    if (from) h.calledFrom = { where: from[0], percent: pct(from[1]) };
    return h;
  };
  const selfSorted = [...selfBy.entries()].filter(([, e]) => e.area !== "idle").sort((a, b) => b[1].us - a[1].us);
  return {
    file,
    seconds: Math.round((profile.endTime - profile.startTime) / 1e4) / 100,
    busySamples: busy,
    areas: {
      project: pct(areaWeight.project),
      dependencies: pct(areaWeight.dependencies),
      runtime: pct(areaWeight.runtime),
      gc: pct(areaWeight.gc),
      idle: 0,
    },
    projectBySelf: selfSorted.filter(([, e]) => e.area === "project").slice(0, top).map(([k, e]) => spot(k, e.area)),
    projectByTotal: [...totalBy.entries()].sort((a, b) => b[1] - a[1]).slice(0, top).map(([k]) => spot(k, "project")),
    allBySelf: selfSorted.slice(0, top).map(([k, e]) => spot(k, e.area)),
  };
}

/** The summary as text for the terminal. */
export function formatProfile(s: ProfileSummary): string {
  const lines = [
    `CPU profile ${s.file}: ${s.seconds} s, ${s.busySamples} busy samples`,
    `  busy time by area: project ${s.areas.project}%, dependencies ${s.areas.dependencies}%, runtime built-ins ${s.areas.runtime}%, GC ${s.areas.gc}%`,
    "  project functions by self time (% of busy):",
    ...s.projectBySelf.map((h) => `    ${h.selfPercent.toFixed(1).padStart(5)}%  (total ${h.totalPercent.toFixed(1).padStart(5)}%)  ${h.where}`),
    "  project functions by total time, callees included (% of busy):",
    ...s.projectByTotal.map((h) => `    ${h.totalPercent.toFixed(1).padStart(5)}%  (self ${h.selfPercent.toFixed(1).padStart(5)}%)  ${h.where}`),
    "  any function by self time (% of busy):",
    ...s.allBySelf.map(
      (h) =>
        `    ${h.selfPercent.toFixed(1).padStart(5)}%  ${h.area.padEnd(12)} ${h.where}` +
        (h.calledFrom ? `  (${h.calledFrom.percent}% from ${h.calledFrom.where})` : ""),
    ),
  ];
  return lines.join("\n");
}
