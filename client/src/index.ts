/** The consumer client's SDK: `createMarketClient` and the types and errors it hands out. */
export { DEFAULT_STORE_DIR, createMarketClient } from "./market-client.js";
export type { MarketClient, MarketClientOptions } from "./market-client.js";
export type { ChatClientOptions } from "./actions/chat.js";
export type { CloseOptions, CloseResult } from "./actions/closeSession.js";
export type { Balance } from "./actions/getBalance.js";
export type { SessionStatus } from "./actions/getSessionStatus.js";
export type { OpenSessionParams, OpenSessionResult } from "./actions/openSession.js";
export type { ProviderStatus } from "./actions/provider/getProviderStatus.js";
export type { RankedBid } from "./actions/rankBids.js";
export type { TopUpResult } from "./actions/topUp.js";
export { formatAmount, parseAmount, parseDuration } from "./chain/amounts.js";
export type { Progress } from "./chain/progress.js";
export type { ClientSettings } from "./context.js";
export * from "./errors.js";
export type { MarketSession } from "./session/market-session.js";
export type { SessionRecord } from "./store/session-record.js";
export { accountFromEnv, requireAccountFromEnv } from "./wallet/load-account.js";
export { decryptKeystore, encryptKeystore } from "./wallet/keystore.js";
