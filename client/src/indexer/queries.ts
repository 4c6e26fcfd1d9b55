/**
 * The indexer's GraphQL queries the client uses, each with a zod parser of its answer.
 */
import { type Address, type Hex, getAddress } from "viem";
import { z } from "zod";
import type { SessionTerms } from "../../../protocol/index.js";
import type { RankedBid } from "../actions/rankBids.js";
import type { IndexerClient } from "./indexer-client.js";

const uint = z.union([z.string().regex(/^[0-9]+$/), z.number().int().nonnegative()]).transform((v) => BigInt(v));
const address = z.string().regex(/^0x[0-9a-fA-F]{40}$/).transform((v) => getAddress(v) as Address);
const bytes32 = z.string().regex(/^0x[0-9a-fA-F]{64}$/).transform((v) => v.toLowerCase() as Hex);

const rankingsSchema = z.object({
  providerRankings: z.array(
    z.object({
      bidId: bytes32,
      provider: address,
      modelId: bytes32,
      endpoint: z.string(),
      pricePerSecond: uint,
      pricePerInputToken: uint,
      pricePerOutputToken: uint,
      score: z.number(),
      sessions: z.number().int().nullish(),
      parts: z.record(z.string(), z.number().nullable()).nullish(),
    }),
  ),
});

export const PROVIDER_RANKINGS_QUERY = /* GraphQL */ `
  query ProviderRankings($modelId: String!, $first: Int!) {
    providerRankings(modelId: $modelId, first: $first) {
      bidId
      provider
      modelId
      endpoint
      pricePerSecond
      pricePerInputToken
      pricePerOutputToken
      score
      sessions
      parts
    }
  }
`;

export async function fetchProviderRankings(indexer: IndexerClient, modelId: Hex, first: number): Promise<RankedBid[]> {
  const data = await indexer.request(PROVIDER_RANKINGS_QUERY, { modelId, first }, (raw) => rankingsSchema.parse(raw));
  return data.providerRankings.map((row) => ({
    bidId: row.bidId,
    provider: row.provider,
    modelId: row.modelId,
    endpoint: row.endpoint,
    prices: {
      perSecond: row.pricePerSecond,
      perInputToken: row.pricePerInputToken,
      perOutputToken: row.pricePerOutputToken,
    },
    score: row.score,
    scoreParts: Object.fromEntries(
      Object.entries(row.parts ?? {}).filter((entry): entry is [string, number] => entry[1] !== null),
    ),
    sessions: row.sessions ?? undefined,
    source: "indexer" as const,
  }));
}

const sessionSchema = z.object({
  session: z
    .object({
      id: bytes32,
      bidId: bytes32,
      openedBlock: uint.nullish(),
      terms: z.object({
        user: address,
        sessionKey: address,
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
  if (!data.session) return undefined;
  return { terms: data.session.terms, bidId: data.session.bidId, openedBlock: data.session.openedBlock ?? undefined };
}
