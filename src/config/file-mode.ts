/**
 * Permission modes as a config file writes them: JSON has no octal numbers,
 * so a mode is a string of octal digits ("0660", "660" or "0o660"), or the
 * mode's value as a number (432 for 0o660). A number such as 660, meant as
 * octal, is above every mode the owner can use and so is refused, never
 * read as another mode.
 * @module
 */

/** The mode `text` spells, if it spells one the owner can read and write (the gateway probes its own socket). */
export function parseFileMode(input: unknown): number | undefined {
  let mode: number;
  if (typeof input === "number" && Number.isInteger(input) && input >= 0 && input <= 0o777) mode = input;
  else {
    const m = typeof input === "string" ? /^(?:0o?)?([0-7]{3})$/.exec(input) : null;
    if (!m) return undefined;
    mode = Number.parseInt(m[1]!, 8);
  }
  return (mode & 0o600) === 0o600 ? mode : undefined;
}

/** How `bester check` prints a mode: four octal digits, as chmod takes them. */
export function formatFileMode(mode: number): string {
  return `0${mode.toString(8).padStart(3, "0")}`;
}
