/**
 * Chain time: the wall clock, unless the chain runs ahead of it (a test chain whose time was moved
 * forward). Deadlines, token expiries and challenge windows are judged by it, as the agent does.
 */
import type { MarketChain } from "./connect.js";

export async function chainNow(chain: Pick<MarketChain, "publicClient">): Promise<number> {
  const block = await chain.publicClient.getBlock({ blockTag: "latest" });
  return Math.max(Date.now() / 1000, Number(block.timestamp));
}
