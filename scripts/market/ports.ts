/**
 * The ports a local market listens on: the preferred one when it is free, else one the OS picks,
 * with a note saying which port was busy (so a second `npm start`, or another program on 8545,
 * never stops the start with a bind error halfway).
 */
import { LocalChainError, assertPortFree, freePort } from "../local-chain";

export interface ChosenPort {
  port: number;
  /** Set when the preferred port was taken and another was picked: what to tell the user. */
  note?: string;
}

/** Whether something already listens on `port` (any error but "in use" counts as free: bind finds out). */
export function portInUse(port: number, host = "127.0.0.1"): Promise<boolean> {
  return assertPortFree(port, host).then(
    () => false,
    (error: unknown) => error instanceof LocalChainError,
  );
}

/**
 * `preferred` if it is free; 0 asks for any free port. `what` names the service in the note
 * ("the indexer's GraphQL API").
 */
export async function choosePort(preferred: number, what: string, host = "127.0.0.1"): Promise<ChosenPort> {
  if (preferred === 0) return { port: await freePort(host) };
  if (!(await portInUse(preferred, host))) return { port: preferred };
  const port = await freePort(host);
  return {
    port,
    note: `port ${preferred} is busy (another npm start? another program?): ${what} uses ${port} instead`,
  };
}

/** One port per request, all different (the OS may hand the same free port out twice in a row). */
export async function choosePorts(
  requests: readonly { preferred: number; what: string }[],
  host = "127.0.0.1",
): Promise<ChosenPort[]> {
  const chosen: ChosenPort[] = [];
  for (const request of requests) {
    let choice = await choosePort(request.preferred, request.what, host);
    while (chosen.some((earlier) => earlier.port === choice.port)) {
      const port = await freePort(host);
      choice = {
        port,
        note: `port ${choice.port} is taken by another part of this market: ${request.what} uses ${port}`,
      };
    }
    chosen.push(choice);
  }
  return chosen;
}
