/**
 * The GraphQL schema (SDL). Amounts are `BigInt` (decimal strings: uint256 never loses precision);
 * block numbers and unix times are `Long` (JSON numbers, exact up to 2^53).
 */
export const typeDefs = /* GraphQL */ `
  "A large integer (uint256 amounts, uint64 counters) as a decimal string."
  scalar BigInt
  "A 64-bit integer sent as a JSON number (block numbers, unix seconds); exact up to 2^53."
  scalar Long

  enum OrderDirection {
    asc
    desc
  }

  "Forward pagination: pass endCursor as after to get the next page."
  type PageInfo {
    hasNextPage: Boolean!
    endCursor: String
  }

  type Query {
    provider(id: String!): Provider
    providers(
      where: ProviderFilter
      orderBy: ProviderOrderBy = registeredBlock
      orderDirection: OrderDirection = asc
      first: Int = 100
      after: String
    ): ProviderPage!
    model(id: String!): Model
    models(
      where: ModelFilter
      orderBy: ModelOrderBy = registeredBlock
      orderDirection: OrderDirection = asc
      first: Int = 100
      after: String
    ): ModelPage!
    bid(id: String!): Bid
    bids(
      where: BidFilter
      orderBy: BidOrderBy = updatedBlock
      orderDirection: OrderDirection = asc
      first: Int = 100
      after: String
    ): BidPage!
    session(id: String!): Session
    sessions(
      where: SessionFilter
      orderBy: SessionOrderBy = openedAt
      orderDirection: OrderDirection = asc
      first: Int = 100
      after: String
    ): SessionPage!
    "Active bids on a model, best first, with the score and each part of it (docs/ranking.md). window: seconds."
    providerRankings(modelId: String!, first: Int = 10, window: Int): [ProviderRanking!]!
    "What an address earned in escrow, claimed and can still claim, by role."
    earnings(address: String!): Earnings!
    "Governance parameters as last set on chain."
    parameters: [Parameter!]!
    _meta: Meta!
  }

  type Subscription {
    "Sessions opened from now on; removed: true retracts one a reorg undid."
    sessionOpened(where: SessionEventFilter): SessionEvent!
    "Sessions settled from now on; removed: true retracts one a reorg undid."
    sessionSettled(where: SessionEventFilter): SessionEvent!
    "Bids posted, updated or deleted from now on; removed: true retracts a change a reorg undid."
    bidChanged(where: BidEventFilter): BidEvent!
  }

  type Provider {
    "The provider's address."
    id: String!
    address: String!
    "Hot key that signs approvals and closes sessions for the provider (null: none)."
    operator: String
    endpoint: String!
    metadataURI: String!
    active: Boolean!
    registeredBlock: Long!
    updatedBlock: Long!
    stake: Stake!
    bids(where: ProviderBidFilter, first: Int = 100, after: String): BidPage!
    sessions(
      where: SessionFilter
      orderBy: SessionOrderBy = openedAt
      orderDirection: OrderDirection = asc
      first: Int = 100
      after: String
    ): SessionPage!
    "Latest health probe of the endpoint (null until probed)."
    health: ProviderHealth
    earnings: Earnings!
  }

  type ProviderHealth {
    lastProbeAt: Long!
    lastOk: Boolean!
    lastLatencyMs: Long
    lastError: String
  }

  type Stake {
    account: String!
    "Stake that counts toward minimums."
    staked: BigInt!
    unbonding: BigInt!
    unlockAt: Long!
    withdrawn: BigInt!
  }

  type Model {
    id: String!
    owner: String!
    "The base model of a LoRA adapter (null for a base model)."
    baseModelId: String
    baseModel: Model
    adapters(first: Int = 100, after: String): ModelPage!
    contentHash: String!
    royaltyBps: Int!
    name: String!
    uri: String!
    tags: [String!]!
    active: Boolean!
    registeredBlock: Long!
    updatedBlock: Long!
    bids(where: ModelBidFilter, first: Int = 100, after: String): BidPage!
    sessions(
      where: SessionFilter
      orderBy: SessionOrderBy = openedAt
      orderDirection: OrderDirection = asc
      first: Int = 100
      after: String
    ): SessionPage!
  }

  type Bid {
    id: String!
    providerAddress: String!
    provider: Provider
    modelId: String!
    model: Model
    pricePerSecond: BigInt!
    pricePerInputToken: BigInt!
    pricePerOutputToken: BigInt!
    active: Boolean!
    feesPaid: BigInt!
    postedBlock: Long!
    updatedBlock: Long!
    sessions(
      where: SessionFilter
      orderBy: SessionOrderBy = openedAt
      orderDirection: OrderDirection = asc
      first: Int = 100
      after: String
    ): SessionPage!
  }

  enum SessionStatus {
    OPEN
    CLOSING
    SETTLED
  }

  "A settled session's rating: SUCCESS (a receipt with output tokens), FAILURE (a receipt without), UNRATED (no receipt)."
  enum SessionOutcome {
    SUCCESS
    FAILURE
    UNRATED
  }

  type Session {
    id: String!
    user: String!
    providerAddress: String!
    provider: Provider
    bidId: String!
    bid: Bid
    modelId: String!
    model: Model
    status: SessionStatus!
    outcome: SessionOutcome
    deposit: BigInt!
    toppedUp: BigInt!
    endsAt: Long!
    openedAt: Long!
    openedBlock: Long!
    openedTx: String!
    "Everything fixed at open, exactly as the contracts take it back (closeSession, topUp, finalize)."
    terms: SessionTerms!
    "A close waiting for its challenge window (null otherwise)."
    closeRequest: CloseRequest
    settlement: Settlement
  }

  type SessionTerms {
    user: String!
    "The key that signs receipts (null while the contracts' terms carry none)."
    sessionKey: String
    provider: String!
    modelId: String!
    nonce: BigInt!
    pricePerSecond: BigInt!
    pricePerInputToken: BigInt!
    pricePerOutputToken: BigInt!
    royaltyRecipient: String!
    royaltyBps: Int!
    feeBps: Int!
    challengeWindow: Long!
    maxDeposit: BigInt!
    openedAt: Long!
    maxEndsAt: Long!
  }

  type Receipt {
    seq: BigInt!
    inputTokens: BigInt!
    outputTokens: BigInt!
    requests: Long!
    ttftMsAvg: Long!
    tpsX1000Avg: Long!
  }

  type CloseRequest {
    closedBy: String!
    closedAt: Long!
    challengeEndsAt: Long!
    "The receipt the close carried: finalize and challenge take it back."
    receipt: Receipt!
  }

  type Settlement {
    cost: BigInt!
    providerAmount: BigInt!
    royaltyAmount: BigInt!
    feeAmount: BigInt!
    refund: BigInt!
    elapsedSeconds: Long!
    "The treasury credited with feeAmount."
    treasury: String
    receipt: Receipt!
    closedBy: String!
    challenged: Boolean!
    settledAt: Long!
    settledBlock: Long!
    settledTx: String!
  }

  type ProviderPage {
    items: [Provider!]!
    pageInfo: PageInfo!
  }
  type ModelPage {
    items: [Model!]!
    pageInfo: PageInfo!
  }
  type BidPage {
    items: [Bid!]!
    pageInfo: PageInfo!
  }
  type SessionPage {
    items: [Session!]!
    pageInfo: PageInfo!
  }

  input ProviderFilter {
    active: Boolean
    operator: String
    address_in: [String!]
  }
  enum ProviderOrderBy {
    registeredBlock
    updatedBlock
    address
  }

  input ModelFilter {
    owner: String
    active: Boolean
    baseModelId: String
    isAdapter: Boolean
    tag: String
  }
  enum ModelOrderBy {
    registeredBlock
    updatedBlock
    name
  }

  input BidFilter {
    provider: String
    modelId: String
    active: Boolean
  }
  input ProviderBidFilter {
    modelId: String
    active: Boolean
  }
  input ModelBidFilter {
    provider: String
    active: Boolean
  }
  enum BidOrderBy {
    updatedBlock
    postedBlock
    pricePerSecond
    pricePerInputToken
    pricePerOutputToken
  }

  "Time bounds are unix seconds: after is inclusive, before exclusive."
  input SessionFilter {
    user: String
    provider: String
    modelId: String
    bidId: String
    status: SessionStatus
    status_in: [SessionStatus!]
    outcome: SessionOutcome
    openedAfter: Long
    openedBefore: Long
    settledAfter: Long
    settledBefore: Long
  }
  enum SessionOrderBy {
    openedAt
    settledAt
    cost
    deposit
  }

  type ProviderRanking {
    rank: Int!
    "Weighted mean of the parts, in (0, 1)."
    score: Float!
    providerAddress: String!
    provider: Provider
    bidId: String!
    bid: Bid
    "Each part in (0, 1): 0.5 is the model's mean."
    parts: RankingParts!
    metrics: RankingMetrics!
  }

  type RankingParts {
    throughput: Float!
    latency: Float!
    consistency: Float!
    success: Float!
    volume: Float!
    duration: Float!
    consumers: Float!
    stake: Float!
    price: Float!
    availability: Float!
  }

  type RankingMetrics {
    sessions: Int!
    ratedSessions: Int!
    successfulSessions: Int!
    successRate: Float
    tpsMean: Float
    tpsStdDev: Float
    ttftMsMean: Float
    ttftMsStdDev: Float
    variation: Float
    servedSeconds: Long!
    "What counted sessions paid, in token base units."
    paid: Float!
    consumers: Int!
    "Effective number of independent payers."
    evidence: Float!
    "How far quality parts move from the model's mean: evidence / (evidence + priorStrength)."
    credibility: Float!
    stake: Float!
    "Price of 1,000 output tokens and their input, time priced at the provider's measured speed."
    pricePer1kTokens: Float!
    uptime: Float
    probes: Int!
  }

  enum EarningsRole {
    PROVIDER
    MODEL_OWNER
    TREASURY
    REFUND
  }

  type Earnings {
    address: String!
    earned: BigInt!
    claimed: BigInt!
    "Equals Escrow.balanceOf(address)."
    claimable: BigInt!
    roles: [RoleEarnings!]!
  }

  type RoleEarnings {
    role: EarningsRole!
    earned: BigInt!
    claimed: BigInt!
    claimable: BigInt!
  }

  type Parameter {
    contract: String!
    name: String!
    value: String!
    updatedBlock: Long!
  }

  type Meta {
    chainId: Long!
    "The SessionRouter the data was indexed from."
    deploymentAddress: String!
    "The last block whose events are all indexed."
    block: MetaBlock!
    finalizedBlock: Long!
    headBlock: Long!
    syncing: Boolean!
    "Blocks between the chain head and the indexed block."
    lag: Long!
  }

  type MetaBlock {
    number: Long!
    hash: String!
    timestamp: Long!
  }

  input SessionEventFilter {
    user: String
    provider: String
    modelId: String
  }
  input BidEventFilter {
    provider: String
    modelId: String
  }

  type SessionEvent {
    removed: Boolean!
    blockNumber: Long!
    blockHash: String!
    transactionHash: String!
    logIndex: Int!
    "The session as this event left it."
    session: Session!
  }

  enum BidChange {
    POSTED
    UPDATED
    DELETED
  }

  type BidEvent {
    removed: Boolean!
    change: BidChange!
    blockNumber: Long!
    blockHash: String!
    transactionHash: String!
    logIndex: Int!
    "The bid as this event left it."
    bid: Bid!
  }
`;
