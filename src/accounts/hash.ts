/**
 * Password hashing: salted scrypt from node:crypto, stored as a
 * self-describing string `scrypt$N$r$p$<salt b64>$<key b64>` so the
 * parameters can be raised later without invalidating stored passwords.
 * @module
 */
import { Buffer } from "node:buffer";
import { createHash, randomBytes, scrypt, timingSafeEqual } from "node:crypto";
import { passwordCheckSlots } from "../config/defaults.ts";
import type { Logger } from "../log/logger.ts";
import { CheckQueue } from "./check-queue.ts";
import type { VerifyResult } from "./store.ts";

/**
 * N=2^14, r=8, p=1: scrypt's classic setting for interactive logins. One hash
 * takes 16 MiB (128·N·r) and tens of milliseconds, so a burst of logins
 * stays affordable for a gateway (the thread pool runs at most a few at once)
 * while an offline guess costs the attacker the same memory and time. Raise N
 * here when hardware allows; old records keep verifying with their own
 * parameters.
 */
export const SCRYPT_N = 2 ** 14;
export const SCRYPT_R = 8;
export const SCRYPT_P = 1;
const KEY_BYTES = 32;
const SALT_BYTES = 16;

// Bounds for parameters read back from a store, so a tampered record cannot make one login eat gigabytes.
const MAX_SCRYPT_MEMORY = 256 * 1024 * 1024;
const MIN_SALT_BYTES = 8;
const MIN_KEY_BYTES = 16;
const MAX_KEY_BYTES = 64;

const BASE64 = /^[A-Za-z0-9+/]+={0,2}$/;

/** A stored password record that is not one this module wrote. */
export class MalformedHashError extends Error {
  override name = "MalformedHashError";
}

interface ParsedHash {
  N: number;
  r: number;
  p: number;
  salt: Buffer;
  key: Buffer;
}

/**
 * Every scrypt of this process takes its turn here, so no burst (of logins,
 * of dummy checks for unknown users) runs more than a few at once.
 */
const scryptTurns = new CheckQueue(passwordCheckSlots);

function derive(password: string, salt: Buffer, N: number, r: number, p: number, keyBytes: number): Promise<Buffer> {
  // The async form runs on the thread pool: a login never blocks the event loop.
  const run = () =>
    new Promise<Buffer>((resolve, reject) =>
      scrypt(password, salt, keyBytes, { N, r, p, maxmem: MAX_SCRYPT_MEMORY + 1024 * 1024 }, (err, key) =>
        err ? reject(err) : resolve(key),
      ),
    );
  return scryptTurns.run("", run, () => {
    throw new Error("scrypt cancelled"); // never: nothing cancels these turns
  });
}

/** Hashes with a fresh random salt. */
export async function hashPassword(password: string): Promise<string> {
  const salt = randomBytes(SALT_BYTES);
  const key = await derive(password, salt, SCRYPT_N, SCRYPT_R, SCRYPT_P, KEY_BYTES);
  return ["scrypt", SCRYPT_N, SCRYPT_R, SCRYPT_P, salt.toString("base64"), key.toString("base64")].join("$");
}

function positiveInt(text: string, what: string): number {
  if (!/^[1-9][0-9]{0,9}$/.test(text)) throw new MalformedHashError(`scrypt ${what} is not a positive integer`);
  return Number(text);
}

function base64Bytes(text: string, what: string): Buffer {
  const bytes = Buffer.from(text, "base64");
  // Buffer.from skips junk silently; insist the text is exactly what encoding the bytes gives.
  if (!BASE64.test(text) || bytes.toString("base64") !== text) throw new MalformedHashError(`${what} is not base64`);
  return bytes;
}

/** Reads a stored record; throws {@link MalformedHashError} saying what is wrong. */
export function parseHash(stored: string): ParsedHash {
  const parts = stored.split("$");
  if (parts[0] !== "scrypt") throw new MalformedHashError("not a scrypt record");
  if (parts.length !== 6) throw new MalformedHashError(`expected 6 '$'-separated fields, got ${parts.length}`);
  const N = positiveInt(parts[1]!, "N");
  const r = positiveInt(parts[2]!, "r");
  const p = positiveInt(parts[3]!, "p");
  if (N < 2 || (N & (N - 1)) !== 0) throw new MalformedHashError("scrypt N is not a power of two");
  if (128 * N * r * p > MAX_SCRYPT_MEMORY) throw new MalformedHashError("scrypt parameters exceed the memory bound");
  const salt = base64Bytes(parts[4]!, "salt");
  const key = base64Bytes(parts[5]!, "key");
  if (salt.length < MIN_SALT_BYTES) throw new MalformedHashError(`salt is shorter than ${MIN_SALT_BYTES} bytes`);
  if (key.length < MIN_KEY_BYTES || key.length > MAX_KEY_BYTES) {
    throw new MalformedHashError(`key is not ${MIN_KEY_BYTES}-${MAX_KEY_BYTES} bytes`);
  }
  return { N, r, p, salt, key };
}

/** Whether `password` matches the stored record; throws {@link MalformedHashError} for a record it cannot read. */
export async function verifyPassword(password: string, stored: string): Promise<boolean> {
  const { N, r, p, salt, key } = parseHash(stored);
  const candidate = await derive(password, salt, N, r, p, key.length);
  return timingSafeEqual(candidate, key);
}

let dummy: Promise<string> | undefined;

/**
 * Spends what verifying a real record costs, for a user that does not exist,
 * so the answer's timing does not reveal which usernames exist.
 */
export async function verifyAgainstDummy(password: string): Promise<void> {
  // Made once, from random bytes nobody knows, with today's parameters.
  dummy ??= hashPassword(randomBytes(SALT_BYTES).toString("base64"));
  await verifyPassword(password, await dummy);
}

/**
 * Whether a stored value is a plain-text password as the original Bester
 * daemon kept them in Redis, rather than one of our scrypt records.
 */
export function isLegacyPlaintext(stored: string): boolean {
  return !stored.startsWith("scrypt$");
}

/** Constant-time comparison of a login against a legacy plain-text password. */
export function legacyPlaintextMatches(password: string, stored: string): boolean {
  // Digests have equal length, which timingSafeEqual needs, whatever the inputs.
  const a = createHash("sha256").update(password).digest();
  const b = createHash("sha256").update(stored).digest();
  return timingSafeEqual(a, b);
}

/** A store's answer for a login against the record it holds for `username`. */
export async function checkStoredPassword(username: string, password: string, stored: string, log?: Logger): Promise<VerifyResult> {
  try {
    if (await verifyPassword(password, stored)) return { ok: true, username };
    return { ok: false, reason: "bad_password", message: `wrong password for ${JSON.stringify(username)}` };
  } catch (err) {
    if (!(err instanceof MalformedHashError)) throw err;
    await verifyAgainstDummy(password); // as slow as a readable record, so timing tells nothing
    // Nobody can log in with a record we cannot read; say why so the operator can reset it.
    const message = `the stored password of ${JSON.stringify(username)} is not a valid scrypt record (${err.message}); set it again with 'bester passwd add'`;
    log?.warn("unreadable password record", { user: username, problem: err.message });
    return { ok: false, reason: "bad_password", message };
  }
}
