/**
 * Plain-text tables for people reading a terminal: columns as wide as their
 * widest cell, two spaces apart.
 * @module
 */

/** Left-aligned columns, except those whose index is in `right` (numbers). */
export function formatTable(header: string[], rows: string[][], right: number[] = []): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? "").length)));
  const line = (cells: string[]) =>
    cells.map((c, i) => (right.includes(i) ? c.padStart(widths[i]!) : c.padEnd(widths[i]!))).join("  ").trimEnd();
  return [line(header), ...rows.map(line)].join("\n");
}
