/** A terminal spinner on stderr while the chain or an agent is awaited; nothing when not a TTY. */
import type { Progress } from "../chain/progress.js";

const FRAMES = ["⠋", "⠙", "⠹", "⠸", "⠼", "⠴", "⠦", "⠧", "⠇", "⠏"];

export function spinnerProgress(stream: NodeJS.WriteStream): Progress {
  if (!stream.isTTY) return { step: (_label, task) => task(() => undefined) };
  return {
    async step(label, task) {
      let text = label;
      let frame = 0;
      const draw = () => {
        const line = `${FRAMES[frame++ % FRAMES.length]!} ${text}`;
        stream.write(`\r\x1b[2K${line.slice(0, (stream.columns || 80) - 1)}`);
      };
      draw();
      const timer = setInterval(draw, 80);
      try {
        return await task((next) => {
          text = next;
        });
      } finally {
        clearInterval(timer);
        stream.write("\r\x1b[2K");
      }
    },
  };
}
