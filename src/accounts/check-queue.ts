/**
 * Password checks waiting for their turn. A check (scrypt) takes a core and
 * 16 MiB while it runs, so only a few run at once, and memory stays flat
 * however many logins arrive together. Waiting checks are taken in turn by
 * key (the login's source address): an address that queued two hundred
 * checks gets one turn in each round, like every other address, so it
 * cannot hold back a login from elsewhere.
 * @module
 */

interface Waiting {
  start(): void;
  cancel(): void;
}

export class CheckQueue {
  #running = 0;
  /** Waiting checks by key, keys in the order of their next turn, each key's checks in arrival order. */
  readonly #waiting = new Map<string, Waiting[]>();
  #count = 0;

  /** `slots` is read at every turn, so a new value applies at once. */
  constructor(private readonly slots: () => number) {}

  /** Checks running now. */
  get running(): number {
    return this.#running;
  }

  /** Checks waiting for a slot. */
  get waiting(): number {
    return this.#count;
  }

  /**
   * Runs `check` once a slot is free and it is `key`'s turn. If the key's
   * waiting checks are cancelled first, `check` never runs and the result is
   * `cancelled()` (or its exception).
   */
  run<T>(key: string, check: () => Promise<T>, cancelled: () => T): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      const job: Waiting = {
        start: () => {
          this.#running++;
          let result: Promise<T>;
          try {
            result = check();
          } catch (err) {
            result = Promise.reject(err);
          }
          result.then(resolve, reject).finally(() => {
            this.#running--;
            this.#next();
          });
        },
        cancel: () => {
          try {
            resolve(cancelled());
          } catch (err) {
            reject(err);
          }
        },
      };
      let queue = this.#waiting.get(key);
      if (queue === undefined) this.#waiting.set(key, (queue = []));
      queue.push(job);
      this.#count++;
      this.#next();
    });
  }

  /** Cancels every check `key` has waiting (not those already running); returns how many there were. */
  cancel(key: string): number {
    const queue = this.#waiting.get(key);
    if (queue === undefined) return 0;
    this.#waiting.delete(key);
    this.#count -= queue.length;
    for (const job of queue) job.cancel();
    return queue.length;
  }

  #next(): void {
    while (this.#running < Math.max(1, this.slots()) && this.#count > 0) {
      // The key whose turn it is goes to the back of the line if it has more waiting.
      const [key, queue] = this.#waiting.entries().next().value!;
      const job = queue.shift()!;
      this.#waiting.delete(key);
      if (queue.length > 0) this.#waiting.set(key, queue);
      this.#count--;
      job.start();
    }
  }
}
