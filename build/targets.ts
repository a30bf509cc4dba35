/**
 * The platforms bester ships a binary for, and the file name of each, shared
 * by the compile script, the release workflow's output and the test harness.
 * No runtime APIs here: the harness imports it under any runtime.
 * @module
 */
import process from "node:process";

/** Every `bun build --compile` target we release (Bun names them `bun-<target>`). */
export const TARGETS = ["linux-x64", "linux-arm64", "darwin-x64", "darwin-arm64", "windows-x64"] as const;
export type Target = (typeof TARGETS)[number];

/** `os-arch` of this machine in Bun's target words (win32 is "windows"). */
export function hostPlatform(): string {
  const os = process.platform === "win32" ? "windows" : process.platform;
  return `${os}-${process.arch}`;
}

/** The host as a release target, or undefined on a platform we do not ship for. */
export function hostTarget(): Target | undefined {
  const host = hostPlatform();
  return (TARGETS as readonly string[]).includes(host) ? (host as Target) : undefined;
}

/** dist/ file name: `bester-linux-x64`, ..., `bester-windows-x64.exe`. */
export function binaryName(target: string): string {
  return `bester-${target}${target.startsWith("windows-") ? ".exe" : ""}`;
}

/** Name of the checksum file beside the binaries, in `sha256sum` format. */
export const CHECKSUM_FILE = "SHA256SUMS";
