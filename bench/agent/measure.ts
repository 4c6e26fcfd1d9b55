/** Timing of concurrent streams against any target (node-llama-cpp directly, the engine, llama-server, the agent's HTTP API). */

export interface StreamRun {
  /** Tokens the stream generated. */
  tokens: number;
  /** From the moment all streams were started to this stream's first token. */
  ttftMs: number;
}

export interface BenchTarget {
  name: string;
  /** Runs in this process, so its CPU time can be read (not llama-server's). */
  inProcess: boolean;
  /** Runs `streams` generations at once, each of `tokens` tokens on the benchmark's prompt. */
  run(streams: number, tokens: number): Promise<StreamRun[]>;
  close(): Promise<void>;
}

export interface Measurement {
  streams: number;
  /** All streams' tokens over the wall-clock time from start to the last token. */
  tokensPerSecond: number;
  /** Mean time to first token over the streams. */
  ttftMs: number;
  /**
   * Tokens per second of this process's CPU time, for in-process targets: unlike wall-clock figures
   * it hardly moves with other jobs' load, so it compares the targets' efficiency on a shared machine.
   */
  tokensPerCpuSecond?: number;
}

/** The median of `repeats` runs by throughput (other engineers share the cores: single runs are noisy). */
export async function measure(
  target: BenchTarget,
  streams: number,
  tokens: number,
  repeats: number,
): Promise<Measurement> {
  const runs: Measurement[] = [];
  for (let repeat = 0; repeat < repeats; repeat++) {
    const started = performance.now();
    const cpuBefore = process.cpuUsage();
    const results = await target.run(streams, tokens);
    const seconds = (performance.now() - started) / 1000;
    const cpu = process.cpuUsage(cpuBefore);
    const cpuSeconds = (cpu.user + cpu.system) / 1e6;
    const generated = results.reduce((sum, run) => sum + run.tokens, 0);
    if (generated !== streams * tokens) {
      throw new Error(`${target.name}: ${streams} streams generated ${generated} tokens, expected ${streams * tokens}`);
    }
    runs.push({
      streams,
      tokensPerSecond: generated / seconds,
      ttftMs: results.reduce((sum, run) => sum + run.ttftMs, 0) / results.length,
      ...(target.inProcess ? { tokensPerCpuSecond: generated / cpuSeconds } : {}),
    });
  }
  runs.sort((a, b) => a.tokensPerSecond - b.tokensPerSecond);
  return runs[Math.floor(runs.length / 2)]!;
}
