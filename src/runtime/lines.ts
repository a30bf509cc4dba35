/** Splits a byte stream into text lines; used for child process output. */
export function lineSplitter(onLine: (line: string) => void) {
  const decoder = new TextDecoder();
  let rest = "";
  return {
    push(chunk: Uint8Array): void {
      const text = rest + decoder.decode(chunk, { stream: true });
      const lines = text.split("\n");
      rest = lines.pop() ?? "";
      for (const line of lines) onLine(line.endsWith("\r") ? line.slice(0, -1) : line);
    },
    end(): void {
      const last = rest + decoder.decode();
      rest = "";
      if (last.length > 0) onLine(last);
    },
  };
}
