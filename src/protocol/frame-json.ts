/**
 * A value as the JSON text of a frame, for every side that sends frames: the
 * gateway, the handler SDK and the client SDK (in a browser too, so this
 * imports nothing).
 * @module
 */

/**
 * Serialises `value` as JSON. Throws a TypeError for values JSON cannot carry
 * (undefined, functions, symbols, BigInt, cycles), so a bug in the caller
 * never puts a bogus frame on the wire.
 */
export function frameJson(value: unknown): string {
  let json: string | undefined;
  try {
    json = JSON.stringify(value);
  } catch (err) {
    // Cycles and BigInt already throw TypeError on both engines; normalise anyway.
    if (err instanceof TypeError) throw err;
    throw new TypeError(`value is not JSON-serialisable: ${String(err)}`, { cause: err });
  }
  if (json === undefined) {
    throw new TypeError(`value is not JSON-serialisable: ${typeof value}`);
  }
  return json;
}
