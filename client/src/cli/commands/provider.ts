import { type Hex, isAddressEqual } from "viem";
import { bidIdOf, providerOfBid } from "../../../../protocol/index.js";
import { formatAmount, parseAmount } from "../../chain/amounts.js";
import { InvalidArgumentError } from "../../errors.js";
import type { MarketClient } from "../../market-client.js";
import { address as parseAddress, basePrice, resolveModel } from "../arguments.js";
import type { Command, CommandContext, OptionSpec } from "../command.js";
import { fields, table, time } from "../output.js";

export const providerStatusCommand: Command = {
  words: ["provider", "status"],
  arguments: "[address]",
  summary: "a provider's registration, stake, bids, open sessions and claimable earnings",
  positionals: { min: 0, max: 1 },
  wallet: "optional",
  async run({ market, output, positionals }) {
    const client = await market();
    const address = positionals[0] === undefined ? undefined : parseAddress(positionals[0], "address");
    const status = await client.providerStatus(address);
    const amount = (value: bigint) => formatAmount(value, client.token);
    output.result(status, () =>
      [
        output.bold(`provider ${status.provider}`),
        fields([
          ["registered", status.registered ? (status.active ? "yes, active" : "yes, inactive") : "no"],
          ["endpoint", status.endpoint || "-"],
          ["operator", status.operator],
          ["stake", `${amount(status.staked)} (minimum ${amount(status.minimumStake)})`],
          [
            "unbonding",
            status.unbonding === 0n ? "-" : `${amount(status.unbonding)} (unlocks ${time(status.unlockAt)})`,
          ],
          ["open sessions", status.openSessions],
          ["claimable", amount(status.claimable)],
        ]),
        status.bids.length === 0
          ? "  no bids"
          : table(
              ["bid", "model", "per second", "per input token", "per output token", "active"],
              status.bids.map((bid) => [
                bid.bidId,
                bid.modelId,
                String(bid.prices.perSecond),
                String(bid.prices.perInputToken),
                String(bid.prices.perOutputToken),
                bid.active ? "yes" : "no",
              ]),
            ),
      ].join("\n"),
    );
  },
};

const PRICE_OPTIONS: Record<string, OptionSpec> = {
  "price-per-second": { type: "string", description: "base units per second", placeholder: "N" },
  "price-per-input-token": { type: "string", description: "base units per input token", placeholder: "N" },
  "price-per-output-token": { type: "string", description: "base units per output token", placeholder: "N" },
};

function prices(values: CommandContext["values"]) {
  return {
    perSecond: basePrice(values["price-per-second"] ?? "0", "price-per-second"),
    perInputToken: basePrice(values["price-per-input-token"] ?? "0", "price-per-input-token"),
    perOutputToken: basePrice(values["price-per-output-token"] ?? "0", "price-per-output-token"),
  };
}

/** A bid given by id, or by model (the wallet's own bid on it). */
async function resolveBid(client: MarketClient, text: string): Promise<Hex> {
  if (/^0x[0-9a-fA-F]{64}$/.test(text)) {
    const modelOrBid = text.toLowerCase() as Hex;
    // A bid id starts with the provider's address; a model id is a hash.
    if (client.account && isAddressEqual(providerOfBid(modelOrBid), client.account.address)) return modelOrBid;
  }
  if (!client.account) throw new InvalidArgumentError("bid", "a bid by model needs the wallet key");
  return bidIdOf(client.account.address, await resolveModel(client, text));
}

export const bidPostCommand: Command = {
  words: ["bid", "post"],
  arguments: "<model>",
  summary: "post a bid on a model (pays the bid fee); prices in base units",
  options: PRICE_OPTIONS,
  positionals: { min: 1, max: 1 },
  wallet: "required",
  async run({ market, output, positionals, values }) {
    const client = await market();
    const bidPrices = prices(values);
    const modelId = await resolveModel(client, positionals[0]!);
    const posted = await client.postBid({ modelId, prices: bidPrices });
    output.result(
      posted,
      () => `posted bid ${posted.bidId} (fee ${formatAmount(posted.fee, client.token)}, tx ${posted.txHash})`,
    );
  },
};

export const bidUpdateCommand: Command = {
  words: ["bid", "update"],
  arguments: "<bid id | model>",
  summary: "change a bid's prices (no fee; open sessions keep theirs)",
  options: PRICE_OPTIONS,
  positionals: { min: 1, max: 1 },
  wallet: "required",
  async run({ market, output, positionals, values }) {
    const client = await market();
    const bidPrices = prices(values);
    const bidId = await resolveBid(client, positionals[0]!);
    const updated = await client.updateBid({ bidId, prices: bidPrices });
    output.result(updated, () => `updated bid ${bidId} (tx ${updated.txHash})`);
  },
};

export const bidDeleteCommand: Command = {
  words: ["bid", "delete"],
  arguments: "<bid id | model>",
  summary: "delete a bid",
  positionals: { min: 1, max: 1 },
  wallet: "required",
  async run({ market, output, positionals }) {
    const client = await market();
    const bidId = await resolveBid(client, positionals[0]!);
    const deleted = await client.deleteBid(bidId);
    output.result(deleted, () => `deleted bid ${bidId} (tx ${deleted.txHash})`);
  },
};

export const stakeCommand: Command = {
  words: ["stake"],
  arguments: "<amount>",
  summary: "stake tokens (e.g. 100 or 2.5)",
  positionals: { min: 1, max: 1 },
  wallet: "required",
  async run({ market, output, positionals }) {
    const client = await market();
    const amount = parseAmount(positionals[0]!, client.token.decimals, "amount");
    const staked = await client.stake(amount);
    output.result({ amount, ...staked }, () => `staked ${formatAmount(amount, client.token)} (tx ${staked.txHash})`);
  },
};

export const unstakeCommand: Command = {
  words: ["unstake"],
  arguments: "<amount> | --withdraw",
  summary: "start unbonding stake, or --withdraw what has unbonded",
  options: { withdraw: { type: "boolean", description: "withdraw the unbonded stake" } },
  positionals: { min: 0, max: 1 },
  wallet: "required",
  async run({ market, output, positionals, values }) {
    const client = await market();
    if (values.withdraw === true) {
      if (positionals.length > 0) throw new InvalidArgumentError("unstake", "give an amount or --withdraw, not both");
      const withdrawn = await client.withdrawStake();
      output.result(
        withdrawn,
        () => `withdrew ${formatAmount(withdrawn.amount, client.token)} (tx ${withdrawn.txHash})`,
      );
      return;
    }
    const text = positionals[0];
    if (text === undefined) throw new InvalidArgumentError("unstake", "give the amount to unstake, or --withdraw");
    const amount = parseAmount(text, client.token.decimals, "amount");
    const requested = await client.requestUnstake(amount);
    output.result(
      { amount, ...requested },
      () =>
        `unbonding ${formatAmount(amount, client.token)} until ${time(requested.unlockAt)} (tx ${requested.txHash}); then \`market unstake --withdraw\``,
    );
  },
};
