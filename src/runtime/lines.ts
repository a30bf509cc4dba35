/** Splits a byte stream into text lines; used for child process output. */
function lineSplitter(onLine: (line: string) => void) {
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

/** Reads a child's output stream to its end, line by line (both adapters' spawn). */
export async function pumpLines(
  stream: ReadableStream<Uint8Array>,
  name: "stdout" | "stderr",
  onOutput: ((stream: "stdout" | "stderr", line: string) => void) | undefined,
): Promise<void> {
  const split = lineSplitter((line) => onOutput?.(name, line));
  for await (const chunk of stream) split.push(chunk);
  split.end();
}
