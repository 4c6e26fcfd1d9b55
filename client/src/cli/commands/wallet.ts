import { formatAmount } from "../../chain/amounts.js";
import { InvalidArgumentError } from "../../errors.js";
import type { Command } from "../command.js";
import { fields, time } from "../output.js";
import { getAddress, isAddress } from "viem";

export const balanceCommand: Command = {
  words: ["balance"],
  arguments: "[address]",
  summary: "tokens in the wallet, claimable in escrow, stake, gas",
  positionals: { min: 0, max: 1 },
  wallet: "optional",
  async run({ market, output, positionals }) {
    const client = await market();
    const address = positionals[0];
    if (address !== undefined && !isAddress(address)) throw new InvalidArgumentError("address", `${address} is not an address`);
    const balance = await client.balance(address === undefined ? undefined : getAddress(address));
    const amount = (value: bigint) => formatAmount(value, client.token);
    output.result(balance, () =>
      [
        output.bold(balance.account),
        fields([
          ["wallet", amount(balance.wallet)],
          ["claimable", amount(balance.claimable)],
          ["staked", amount(balance.staked)],
          ["unbonding", balance.unbonding === 0n ? "-" : `${amount(balance.unbonding)} (unlocks ${time(balance.unlockAt)})`],
          ["gas", `${formatAmount(balance.gas, { symbol: "ETH", decimals: 18 })}`],
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
