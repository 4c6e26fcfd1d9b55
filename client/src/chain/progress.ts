/**
 * How long-running steps (a transaction being mined, an agent being asked) are shown: the CLI
 * passes a spinner, the SDK's default shows nothing.
 */
export interface Progress {
  /** Runs `task` while `label` is shown; `update` changes the label (e.g. to name a tx hash). */
  step<T>(label: string, task: (update: (label: string) => void) => Promise<T>): Promise<T>;
}

export const silentProgress: Progress = {
  step: (_label, task) => task(() => undefined),
};
