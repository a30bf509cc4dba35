/**
 * A latency histogram with bounded memory: whole microseconds, exact below
 * 128 µs, then 64 buckets per power of two (at most 1.6% too high), up to
 * about 19 hours. Recording is a few integer operations, so the load
 * generator can record every message without sorting millions of samples.
 * @module
 */

/** Values below this are kept exactly. */
const LINEAR = 128;
/** Buckets per power of two above LINEAR. */
const SUB = 64;
/** Powers of two covered above LINEAR: 2^7 .. 2^36 µs. */
const OCTAVES = 30;

export interface LatencySummary {
  /** Milliseconds; null when nothing was recorded. */
  p50: number | null;
  p90: number | null;
  p99: number | null;
  max: number | null;
  mean: number | null;
  count: number;
}

export class Histogram {
  readonly counts = new Float64Array(LINEAR + OCTAVES * SUB);
  count = 0;
  #sumUs = 0;
  #maxUs = 0;

  /** Records one latency in milliseconds (negative values count as 0). */
  recordMs(ms: number): void {
    const us = ms > 0 ? Math.round(ms * 1000) : 0;
    this.counts[indexOf(us)]!++;
    this.count++;
    this.#sumUs += us;
    if (us > this.#maxUs) this.#maxUs = us;
  }

  /** Adds another histogram's samples to this one. */
  merge(other: Histogram): void {
    for (let i = 0; i < this.counts.length; i++) this.counts[i]! += other.counts[i]!;
    this.count += other.count;
    this.#sumUs += other.#sumUs;
    if (other.#maxUs > this.#maxUs) this.#maxUs = other.#maxUs;
  }

  /** The smallest recorded value v such that a fraction `q` of samples is <= v, in ms (upper bucket edge). */
  quantileMs(q: number): number | null {
    if (this.count === 0) return null;
    const rank = Math.max(1, Math.ceil(q * this.count));
    let seen = 0;
    for (let i = 0; i < this.counts.length; i++) {
      seen += this.counts[i]!;
      if (seen >= rank) return Math.min(upperOf(i), this.#maxUs) / 1000;
    }
    return this.#maxUs / 1000;
  }

  summary(): LatencySummary {
    const empty = this.count === 0;
    return {
      p50: this.quantileMs(0.5),
      p90: this.quantileMs(0.9),
      p99: this.quantileMs(0.99),
      max: empty ? null : this.#maxUs / 1000,
      mean: empty ? null : this.#sumUs / this.count / 1000,
      count: this.count,
    };
  }
}

function indexOf(us: number): number {
  if (us < LINEAR) return us;
  // 31 - clz32 is floor(log2); shift so the top 7 bits (64..127) remain.
  const shift = 31 - Math.clz32(us >= 2 ** 31 ? 2 ** 31 - 1 : us) - 6;
  const octave = Math.min(shift - 1, OCTAVES - 1);
  const sub = Math.min(Math.floor(us / 2 ** (octave + 1)) - SUB, SUB - 1);
  return LINEAR + octave * SUB + sub;
}

/** The largest value (µs) that falls in bucket `i`. */
function upperOf(i: number): number {
  if (i < LINEAR) return i;
  const octave = Math.floor((i - LINEAR) / SUB);
  const sub = (i - LINEAR) % SUB;
  return (SUB + sub + 1) * 2 ** (octave + 1) - 1;
}
