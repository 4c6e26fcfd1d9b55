/**
 * Several processes' output on one terminal, each line prefixed with its source's name:
 *
 *   node     │ …
 *   agent    │ ready  url=http://127.0.0.1:8080 …
 *   consumer │ Hello there…
 *
 * Log sources are shown a whole line at a time (their lines are JSON records to format). A
 * streaming source (the consumer's chat) is shown as it arrives, mid-line; if another source
 * speaks meanwhile, the open line is ended first and resumed under a new prefix afterwards.
 */

const COLOURS = [36, 33, 35, 32, 34, 31] as const; // cyan, yellow, magenta, green, blue, red

export interface SourceOptions {
  /** Turns each complete line into what is shown (default: as is); undefined hides the line. */
  format?: (line: string) => string | undefined;
  /** Show partial lines at once (a token stream) instead of waiting for the newline. */
  streaming?: boolean;
}

export interface OutputSource {
  write(text: string): void;
  /** Shows what is left of a last line without a newline. */
  end(): void;
}

export class PrefixedOutput {
  /** The source whose line is open (shown without its newline yet). */
  private openLine: string | undefined;
  private sources = 0;

  constructor(
    private readonly out: (text: string) => void,
    private readonly options: { width?: number; colour?: boolean } = {},
  ) {}

  /** For `process.stdout`: colour on a terminal unless NO_COLOR is set. */
  static forStdout(width = 8): PrefixedOutput {
    const colour = process.stdout.isTTY && process.env.NO_COLOR === undefined;
    return new PrefixedOutput((text) => process.stdout.write(text), { width, colour });
  }

  private prefixOf(name: string, index: number): string {
    const label = `${name.padEnd(this.options.width ?? 8)} │ `;
    if (!this.options.colour) return label;
    return `\u001b[${COLOURS[index % COLOURS.length]}m${label}\u001b[0m`;
  }

  /** Ends another source's open line before `name` writes. */
  private takeLine(name: string): boolean {
    if (this.openLine === name) return true;
    if (this.openLine !== undefined) this.out("\n");
    this.openLine = undefined;
    return false;
  }

  /** A line of this program's own (no prefix). */
  line(text: string): void {
    this.takeLine("");
    this.out(`${text}\n`);
  }

  source(name: string, options: SourceOptions = {}): OutputSource {
    const prefix = this.prefixOf(name, this.sources++);
    const format = options.format ?? ((line: string): string | undefined => line);
    let pending = "";

    const showLine = (line: string) => {
      if (this.openLine === name) {
        this.out(`${line}\n`);
        this.openLine = undefined;
        return;
      }
      const shownLine = format(line);
      if (shownLine === undefined) return;
      this.takeLine(name);
      this.out(`${prefix}${shownLine}\n`);
    };
    const showPartial = (text: string) => {
      if (text === "") return;
      const continuing = this.takeLine(name);
      this.out(`${continuing ? "" : prefix}${text}`);
      this.openLine = name;
    };

    return {
      write: (text: string) => {
        const lines = (pending + text).split(/\r?\n/);
        pending = lines.pop() ?? "";
        for (const line of lines) showLine(line);
        if (options.streaming) {
          showPartial(pending);
          pending = "";
        }
      },
      end: () => {
        if (pending !== "") showLine(pending);
        pending = "";
        if (this.openLine === name) {
          this.out("\n");
          this.openLine = undefined;
        }
      },
    };
  }
}
