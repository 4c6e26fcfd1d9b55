/** Claims the provider's escrow balance (Escrow pays the caller's own balance: the provider key sends it). */
import { escrowAbi } from "../../../protocol/index.js";
import type { MarketReader } from "../chain/market.js";
import type { TransactionSender } from "../chain/transactions.js";
import type { Logger } from "../log/logger.js";

/** Claims the whole balance when it is at least `minClaim`; returns the amount claimed (0: none). */
export async function claimEarnings(
  reader: MarketReader,
  sender: TransactionSender,
  minClaim: bigint,
  logger: Logger,
): Promise<bigint> {
  const balance = await reader.escrowBalance(sender.address);
  if (balance === 0n || balance < minClaim) {
    logger.info({ balance, minClaim }, "nothing to claim");
    return 0n;
  }
  await sender.send(`claim ${balance}`, { address: reader.addresses.escrow, abi: escrowAbi, functionName: "claim" });
  logger.info({ amount: balance }, "claimed escrow balance");
  return balance;
}
