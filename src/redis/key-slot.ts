/**
 * The Redis Cluster hash slot of a key (CRC16/XMODEM of its hash tag, or of
 * the whole key without one, modulo 16384), so calls can be grouped by the
 * slot they must run in.
 * @module
 */

const TABLE = (() => {
  const t = new Uint16Array(256);
  for (let i = 0; i < 256; i++) {
    let c = i << 8;
    for (let k = 0; k < 8; k++) c = c & 0x8000 ? (c << 1) ^ 0x1021 : c << 1;
    t[i] = c & 0xffff;
  }
  return t;
})();

const UTF8 = new TextEncoder();

export function keySlot(key: string): number {
  // The hash tag: what is between the first "{" and the next "}", if that is not empty.
  const open = key.indexOf("{");
  if (open >= 0) {
    const close = key.indexOf("}", open + 1);
    if (close > open + 1) key = key.slice(open + 1, close);
  }
  let crc = 0;
  for (const b of UTF8.encode(key)) crc = ((crc << 8) & 0xffff) ^ TABLE[((crc >> 8) ^ b) & 0xff]!;
  return crc % 16384;
}
