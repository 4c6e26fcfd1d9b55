import { formatAmount } from "../../chain/amounts.js";
import type { Command } from "../command.js";
import { table } from "../output.js";
import { resolveModel, positiveInteger } from "../arguments.js";

export const modelsCommand: Command = {
  words: ["models"],
  arguments: "",
  summary: "list the market's models",
  positionals: { min: 0, max: 0 },
  wallet: "optional",
  async run({ market, output }) {
    const client = await market();
    const models = await client.listModels();
    output.result(models, () =>
      models.length === 0
        ? "no models registered"
        : table(
            ["name", "id", "royalty", "active", "tags"],
            models.map((model) => [
              model.name,
              model.modelId,
              `${model.royaltyBps / 100}%`,
              model.active ? "yes" : "no",
              model.tags.join(","),
            ]),
          ),
    );
  },
};

export const rankCommand: Command = {
  words: ["rank"],
  arguments: "<model>",
  summary: "rank a model's bids (the indexer's score; without an indexer, cheapest first)",
  options: { first: { type: "string", description: "how many bids", placeholder: "N" } },
  positionals: { min: 1, max: 1 },
  wallet: "optional",
  async run({ market, output, positionals, values }) {
    const client = await market();
    const modelId = await resolveModel(client, positionals[0]!);
    const ranked = await client.rankBids(modelId, { first: positiveInteger(values.first, "first", 20, 1000) });
    const price = (value: bigint) => formatAmount(value, client.token);
    output.result({ modelId, bids: ranked }, () =>
      ranked.length === 0
        ? `no active bid for model ${modelId}`
        : table(
            ["#", "score", "provider", "per hour", "per 1k in", "per 1k out", "endpoint", "bid"],
            ranked.map((bid, index) => [
              String(index + 1),
              bid.score === undefined ? "-" : bid.score.toFixed(3),
              bid.provider,
              price(bid.prices.perSecond * 3600n),
              price(bid.prices.perInputToken * 1000n),
              price(bid.prices.perOutputToken * 1000n),
              bid.endpoint,
              bid.bidId,
            ]),
          ) + (ranked[0]?.source === "chain" ? `\n${output.dim("(ranked by price: no indexer configured)")}` : ""),
    );
  },
};
