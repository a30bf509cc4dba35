/** Asking for a password on the terminal, for the commands that need one. */

/** Whether a hidden prompt is possible: stdin is a terminal that can go raw. */
export function canPrompt(): boolean {
  return Boolean(process.stdin.isTTY) && typeof process.stdin.setRawMode === "function";
}

/** Reads one line from the terminal in raw mode, echoing nothing; Ctrl-C (or Ctrl-D on an empty line) rejects with `cancelled`. */
export function promptHidden(prompt: string, cancelled = "cancelled"): Promise<string> {
  const stdin = process.stdin;
  // Echo off before the prompt shows, so nothing typed after seeing it can echo.
  stdin.setRawMode(true);
  process.stderr.write(prompt);
  stdin.resume();
  return new Promise((resolve, reject) => {
    let chars: string[] = [];
    const decoder = new TextDecoder(); // streaming: a character may arrive split across chunks
    const finish = () => {
      stdin.off("data", onData);
      stdin.setRawMode(false);
      stdin.pause();
      process.stderr.write("\n");
    };
    const onData = (chunk: Uint8Array | string) => {
      for (const ch of typeof chunk === "string" ? chunk : decoder.decode(chunk, { stream: true })) {
        switch (ch) {
          case "\r":
          case "\n":
            finish();
            return resolve(chars.join(""));
          case "\u0003": // Ctrl-C: raw mode turned it into a byte
            finish();
            return reject(new Error(cancelled));
          case "\u0004": // Ctrl-D on an empty line
            if (chars.length === 0) {
              finish();
              return reject(new Error(cancelled));
            }
            break;
          case "\u007f":
          case "\b":
            chars = chars.slice(0, -1);
            break;
          case "\u0015": // Ctrl-U clears the line
            chars = [];
            break;
          default:
            chars.push(ch);
        }
      }
    };
    stdin.on("data", onData);
  });
}
