import { formatAmount } from "../../chain/amounts.js";
import { address as parseAddress } from "../arguments.js";
import type { Command } from "../command.js";
import { fields, time } from "../output.js";

export const balanceCommand: Command = {
  words: ["balance"],
  arguments: "[address]",
  summary: "tokens in the wallet, claimable in escrow, stake, gas",
  positionals: { min: 0, max: 1 },
  wallet: "optional",
  async run({ market, output, positionals }) {
    const client = await market();
    const address = positionals[0] === undefined ? undefined : parseAddress(positionals[0], "address");
    const balance = await client.balance(address);
    const amount = (value: bigint) => formatAmount(value, client.token);
    output.result(balance, () =>
      [
        output.bold(balance.account),
        fields([
          ["wallet", amount(balance.wallet)],
          ["claimable", amount(balance.claimable)],
          ["staked", amount(balance.staked)],
          [
            "unbonding",
            balance.unbonding === 0n ? "-" : `${amount(balance.unbonding)} (unlocks ${time(balance.unlockAt)})`,
          ],
          ["gas", formatAmount(balance.gas, { symbol: "ETH", decimals: 18 })],
        ]),
      ].join("\n"),
    );
  },
};

export const claimCommand: Command = {
  words: ["claim"],
  arguments: "",
  summary: "take the wallet's escrow balance (earnings, royalties, credited refunds)",
  positionals: { min: 0, max: 0 },
  wallet: "required",
  async run({ market, output }) {
    const client = await market();
    const claimed = await client.claim();
    output.result(claimed, () => `claimed ${formatAmount(claimed.amount, client.token)} (tx ${claimed.txHash})`);
  },
};
