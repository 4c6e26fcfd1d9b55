/**
 * The indexer's GraphQL queries the client uses, each with a zod parser of its answer.
 */
import { type Address, type Hex, getAddress } from "viem";
import { z } from "zod";
import type { SessionTerms } from "../../../protocol/index.js";
import type { RankedBid } from "../actions/rankBids.js";
import type { IndexerClient } from "./indexer-client.js";

const uint = z.union([z.string().regex(/^[0-9]+$/), z.number().int().nonnegative()]).transform((v) => BigInt(v));
const address = z
  .string()
  .regex(/^0x[0-9a-fA-F]{40}$/)
  .transform((v): Address => getAddress(v));
const bytes32 = z
  .string()
  .regex(/^0x[0-9a-fA-F]{64}$/)
  .transform((v) => v.toLowerCase() as Hex);

const rankingsSchema = z.object({
  providerRankings: z.array(
    z.object({
      rank: z.number().int(),
      score: z.number(),
      providerAddress: address,
      bidId: bytes32,
      provider: z.object({ endpoint: z.string(), active: z.boolean() }).nullable(),
      bid: z
        .object({
          modelId: bytes32,
          pricePerSecond: uint,
          pricePerInputToken: uint,
          pricePerOutputToken: uint,
          active: z.boolean(),
        })
        .nullable(),
      parts: z.record(z.string(), z.number()),
      metrics: z.object({ sessions: z.number().int() }),
    }),
  ),
});

export const PROVIDER_RANKINGS_QUERY = /* GraphQL */ `
  query ProviderRankings($modelId: String!, $first: Int!) {
    providerRankings(modelId: $modelId, first: $first) {
      rank
      score
      providerAddress
      bidId
      provider {
        endpoint
        active
      }
      bid {
        modelId
        pricePerSecond
        pricePerInputToken
        pricePerOutputToken
        active
      }
      parts {
        throughput
        latency
        consistency
        success
        volume
        duration
        consumers
        stake
        price
        availability
      }
      metrics {
        sessions
      }
    }
  }
`;

/** The indexer's ranking of a model's bids, best first (inactive bids and providers left out). */
export async function fetchProviderRankings(indexer: IndexerClient, modelId: Hex, first: number): Promise<RankedBid[]> {
  const data = await indexer.request(PROVIDER_RANKINGS_QUERY, { modelId, first }, (raw) => rankingsSchema.parse(raw));
  const ranked: RankedBid[] = [];
  for (const row of [...data.providerRankings].sort((a, b) => a.rank - b.rank)) {
    if (!row.bid?.active || !row.provider?.active) continue;
    ranked.push({
      bidId: row.bidId,
      provider: row.providerAddress,
      modelId: row.bid.modelId,
      endpoint: row.provider.endpoint,
      prices: {
        perSecond: row.bid.pricePerSecond,
        perInputToken: row.bid.pricePerInputToken,
        perOutputToken: row.bid.pricePerOutputToken,
      },
      score: row.score,
      scoreParts: row.parts,
      sessions: row.metrics.sessions,
      source: "indexer",
    });
  }
  return ranked;
}

const sessionSchema = z.object({
  session: z
    .object({
      id: bytes32,
      bidId: bytes32,
      openedBlock: uint.nullish(),
      terms: z.object({
        user: address,
        sessionKey: address.nullable(),
        provider: address,
        modelId: bytes32,
        nonce: uint,
        pricePerSecond: uint,
        pricePerInputToken: uint,
        pricePerOutputToken: uint,
        royaltyRecipient: address,
        royaltyBps: z.number().int(),
        feeBps: z.number().int(),
        challengeWindow: z.number().int(),
        maxDeposit: uint,
        openedAt: z.number().int(),
        maxEndsAt: z.number().int(),
      }),
    })
    .nullable(),
});

export const SESSION_QUERY = /* GraphQL */ `
  query Session($id: String!) {
    session(id: $id) {
      id
      bidId
      openedBlock
      terms {
        user
        sessionKey
        provider
        modelId
        nonce
        pricePerSecond
        pricePerInputToken
        pricePerOutputToken
        royaltyRecipient
        royaltyBps
        feeBps
        challengeWindow
        maxDeposit
        openedAt
        maxEndsAt
      }
    }
  }
`;

/** A session's terms as the indexer has them (from its SessionOpened event), or undefined. */
export async function fetchSessionTerms(
  indexer: IndexerClient,
  sessionId: Hex,
): Promise<{ terms: SessionTerms; bidId: Hex; openedBlock: bigint | undefined } | undefined> {
  const data = await indexer.request(SESSION_QUERY, { id: sessionId }, (raw) => sessionSchema.parse(raw));
  const session = data.session;
  if (!session) return undefined;
  const { sessionKey } = session.terms;
  // An indexer of contracts older than session keys: the user signed, so its address is the key.
  const terms: SessionTerms = { ...session.terms, sessionKey: sessionKey ?? session.terms.user };
  return { terms, bidId: session.bidId, openedBlock: session.openedBlock ?? undefined };
}
