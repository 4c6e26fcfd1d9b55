// Named re-exports, not `export *`: an ESM service (under tsx) imports this CommonJS file, and Node
// finds the names of a CommonJS module's exports only when they are listed (cjs-module-lexer).
export {
  escrowAbi,
  marketErrorsAbi,
  marketTokenAbi,
  marketplaceAbi,
  modelRegistryAbi,
  providerRegistryAbi,
  sessionRouterAbi,
  stakingAbi,
} from "./abis";
export {
  DeploymentNotFoundError,
  InvalidDeploymentError,
  deploymentFile,
  loadMarketAddresses,
  parseDeployedAddresses,
} from "./addresses";
export type { MarketAddresses } from "./addresses";
export {
  EIP712_NAME,
  EIP712_VERSION,
  emptyReceipt,
  hashSessionTypedData,
  marketDomain,
  recoverSessionSigner,
  sessionTypes,
  signSessionApproval,
  signSessionAuth,
  signUsageReceipt,
  verifySessionApproval,
  verifySessionAuth,
  verifyUsageReceipt,
} from "./eip712";
export type {
  MarketDomain,
  SessionApproval,
  SessionAuth,
  SessionTypedDataName,
  TypedDataSigner,
  UsageReceipt,
} from "./eip712";
export { KeystoreError, decryptKeystore, encryptKeystore } from "./keystore";
export type { KeystoreErrorReason } from "./keystore";
export { permitDomain, permitTypes } from "./permit";
export type { Permit } from "./permit";
export {
  bidIdOf,
  modelIdOf,
  providerOfBid,
  sessionCost,
  sessionIdOf,
  sessionTermsAbiParameter,
  splitCost,
  usageCost,
} from "./session";
export type { Prices, SessionTerms, Usage } from "./session";
export {
  AGENT_ERROR_STATUS,
  AgentWireFormatError,
  DEFAULT_MAX_AUTH_LIFETIME_SECONDS,
  RECEIPT_HEADER,
  agentErrorType,
  approvalFromJson,
  approvalToJson,
  createAuthToken,
  encodeAuthToken,
  encodeReceiptHeader,
  isAgentErrorCode,
  parseApprovalResponse,
  parseAuthToken,
  parseReceiptHeader,
  pricesFromJson,
  pricesToJson,
  receiptFromJson,
  receiptToJson,
  signReceipt,
  signedReceiptFromJson,
  signedReceiptToJson,
} from "./agent-api";
export type {
  AgentErrorBody,
  AgentErrorCode,
  ApprovalRequestBody,
  ApprovalResponseBody,
  CloseResponseBody,
  PricesJson,
  ReceiptRequestBody,
  ReceiptResponseBody,
  SessionApprovalJson,
  SessionStatusBody,
  SessionStatusName,
  SessionUsageExtension,
  SessionUsageJson,
  SignedSessionAuth,
  SignedUsageReceipt,
  SignedUsageReceiptJson,
  UsageReceiptJson,
} from "./agent-api";
