/**
 * Reads a config file and turns it into a {@link Config}: JSON, then the
 * schema, then the config normalised (normalise.ts), then the rules that span
 * several keys (rules.ts, and loopback.ts for host names), with every issue
 * collected and named by its path, so one run shows everything that needs
 * fixing.
 *
 * @module
 */
import { readFile } from "node:fs/promises";
import { resolve } from "node:path";
import * as v from "valibot";
import { findJsonSyntaxError } from "./json-error.ts";
import { checkResolvedAddresses } from "./loopback.ts";
import { normalise } from "./normalise.ts";
import { checkConfig } from "./rules.ts";
import { CONFIG_SECTIONS, configSchema, findUnknownKeys, joinPath } from "./schema.ts";
import { type Config, type ConfigIssue, LISTENER_KINDS, type ListenerKind } from "./types.ts";

export type { ConfigIssue } from "./types.ts";
export type LoadResult =
  | { ok: true; config: Config; warnings: string[] }
  | { ok: false; errors: ConfigIssue[]; warnings: string[] };

/** Answered by the server itself (PROTOCOL.md §3); a handler of that name never sees a message. */
const BUILTIN_TYPES = ["dummy", "builtin"];
/** valibot drops these keys from records (prototype pollution guard), so a handler so named would vanish silently. */
const RESERVED_NAMES = ["__proto__", "prototype", "constructor"];

const UTF8 = new TextDecoder("utf-8", { fatal: true });
const q = (s: string) => JSON.stringify(s);
const isPlainObject = (x: unknown): x is Record<string, unknown> =>
  typeof x === "object" && x !== null && !Array.isArray(x);
const failed = (errors: ConfigIssue[], warnings: string[] = []): LoadResult => ({ ok: false, errors, warnings });

export function formatIssue(i: ConfigIssue): string {
  return i.path === "" ? i.message : `${i.path}: ${i.message}`;
}

export async function loadConfigFile(path: string): Promise<LoadResult> {
  const source = resolve(path);
  let bytes: Uint8Array;
  try {
    bytes = await readFile(source);
  } catch (e) {
    return failed([{ path: "", message: `cannot read ${source}: ${readFailure(e)}` }]);
  }
  let text: string;
  try {
    text = UTF8.decode(bytes);
  } catch {
    return failed([{ path: "", message: `cannot read ${source}: not valid UTF-8` }]);
  }
  const parsed = parseConfigText(text, source);
  if (!parsed.ok) return parsed;
  // Host names are judged by the addresses they resolve to, which needs the resolver: after everything else.
  const unsafe = await checkResolvedAddresses(parsed.config);
  return unsafe.length > 0 ? failed(unsafe, parsed.warnings) : parsed;
}

function readFailure(e: unknown): string {
  const code = (e as { code?: unknown }).code;
  if (code === "ENOENT") return "no such file";
  if (code === "EACCES") return "permission denied";
  if (code === "EISDIR") return "it is a directory";
  return e instanceof Error ? e.message : String(e);
}

/** `sourcePath` names the file in messages and anchors its relative paths. */
export function parseConfigText(text: string, sourcePath: string): LoadResult {
  const source = resolve(sourcePath);
  const json = text.replace(/^\uFEFF/, ""); // editors on Windows like to add a BOM
  let raw: unknown;
  try {
    raw = JSON.parse(json);
  } catch (e) {
    const at = findJsonSyntaxError(json);
    const where = at ? `line ${at.line}, column ${at.column}: ${at.reason}` : (e as Error).message;
    return failed([{ path: "", message: `${source} is not valid JSON: ${where}` }]);
  }
  return validateConfig(raw, source);
}

/** Validates an already parsed file; relative paths in it resolve against the directory of `sourcePath`. */
export function validateConfig(raw: unknown, sourcePath: string): LoadResult {
  const source = resolve(sourcePath);
  const errors: ConfigIssue[] = [];
  const warnings: string[] = [];
  const input = setAside(raw, errors, warnings);
  for (const [at, key] of findUnknownKeys(configSchema, input)) {
    warnings.push(`unknown key ${q(key)} at ${at || "the top level"} (ignored)`);
  }
  const parsed = v.safeParse(configSchema, input, { abortEarly: false });
  if (!parsed.success) errors.unshift(...parsed.issues.map(toIssue));
  if (!parsed.success || errors.length > 0) return failed(inSchemaOrder(errors), warnings);
  const config = normalise(parsed.output, source);
  const checked = checkConfig(config);
  warnings.push(...checked.warnings);
  if (checked.errors.length > 0) return failed(checked.errors, warnings);
  return { ok: true, config, warnings };
}

function toIssue(issue: v.BaseIssue<unknown>): ConfigIssue {
  const path = (issue.path ?? []).reduce((p, item) => joinPath(p, item.key as string | number), "");
  return { path, message: issue.message };
}

/** Groups issues by top-level section, in the schema's order, keeping their order within a section. */
function inSchemaOrder(issues: ConfigIssue[]): ConfigIssue[] {
  const rank = (i: ConfigIssue) => CONFIG_SECTIONS.indexOf(i.path.split(/[.[]/)[0]!);
  return issues.map((i, n) => ({ i, n })).sort((a, b) => rank(a.i) - rank(b.i) || a.n - b.n).map((x) => x.i);
}

/**
 * The rules between keys that the schema cannot see, checked on the raw file
 * so they are reported together with the schema's issues. Returns the input
 * without the parts the file has switched off (listener blocks not in
 * network.types, handlers not in availableTypes): those are ignored, not
 * validated, as the original daemon ignored them.
 */
function setAside(raw: unknown, errors: ConfigIssue[], warnings: string[]): unknown {
  if (!isPlainObject(raw)) return raw;
  const input = { ...raw };
  const network = raw.network;
  if (isPlainObject(network) && Array.isArray(network.types)) {
    const kept = { ...network };
    const named = new Set<string>();
    network.types.forEach((kind: unknown, i) => {
      if (!(LISTENER_KINDS as readonly unknown[]).includes(kind)) return; // the schema reports it
      const k = kind as ListenerKind;
      if (named.has(k)) errors.push({ path: joinPath("network.types", i), message: `${q(k)} is listed twice` });
      // Every key of the WebSocket listener has a default: "ws" in the list is enough.
      else if (k === "ws" && !Object.hasOwn(network, k)) kept[k] = {};
      else if (!Object.hasOwn(network, k)) {
        errors.push({ path: `network.${k}`, message: `required because network.types includes ${q(k)}` });
      }
      named.add(k);
    });
    for (const kind of LISTENER_KINDS) {
      if (named.has(kind) || !Object.hasOwn(network, kind)) continue;
      warnings.push(`network.${kind}: ignored because network.types does not include ${q(kind)}`);
      delete kept[kind];
    }
    input.network = kept;
  }
  const control = raw.control;
  if (isPlainObject(control) && control.socket !== undefined && (control.address !== undefined || control.port !== undefined)) {
    errors.push({ path: "control.socket", message: "give either a socket or an address and port, not both" });
  }
  const handlers = raw.handlers;
  const typeMap = isPlainObject(handlers) ? (handlers.typeMap ?? {}) : undefined;
  if (isPlainObject(handlers) && Array.isArray(handlers.availableTypes) && isPlainObject(typeMap)) {
    const kept: Record<string, unknown> = Object.create(null);
    const named = new Set<string>();
    handlers.availableTypes.forEach((type: unknown, i) => {
      if (typeof type !== "string" || type === "") return; // the schema reports it
      const at = joinPath("handlers.availableTypes", i);
      if (named.has(type)) warnings.push(`${at}: ${q(type)} is listed twice (ignored)`);
      else if (RESERVED_NAMES.includes(type)) errors.push({ path: at, message: `${q(type)} cannot be a type name` });
      else if (!Object.hasOwn(typeMap, type)) {
        errors.push({
          path: joinPath("handlers.typeMap", type),
          message: `required because handlers.availableTypes includes ${q(type)}`,
        });
      } else if (BUILTIN_TYPES.includes(type)) {
        warnings.push(`${at}: ${q(type)} is answered by the server itself, so this handler is never used`);
      }
      named.add(type);
    });
    for (const [type, entry] of Object.entries(typeMap)) {
      if (named.has(type)) kept[type] = entry;
      else warnings.push(`${joinPath("handlers.typeMap", type)}: ignored because handlers.availableTypes does not include ${q(type)}`);
    }
    input.handlers = { ...handlers, typeMap: kept };
  }
  return input;
}

