/** JSON schemas shared by the routes: the wire shapes of protocol/agent-api.ts. */
export const uintString = { type: "string", pattern: "^(0|[1-9][0-9]*)$", description: "decimal integer" } as const;
export const bytes32 = { type: "string", pattern: "^0x[0-9a-fA-F]{64}$" } as const;
export const address = { type: "string", pattern: "^0x[0-9a-fA-F]{40}$" } as const;
export const signature = { type: "string", pattern: "^0x([0-9a-fA-F]{128}|[0-9a-fA-F]{130})$" } as const;

export const receiptSchema = {
  type: "object",
  required: ["sessionId", "seq", "inputTokens", "outputTokens", "requests", "ttftMsAvg", "tpsX1000Avg"],
  additionalProperties: false,
  properties: {
    sessionId: bytes32,
    seq: uintString,
    inputTokens: uintString,
    outputTokens: uintString,
    requests: { type: "integer", minimum: 0, maximum: 4294967295 },
    ttftMsAvg: { type: "integer", minimum: 0, maximum: 4294967295 },
    tpsX1000Avg: { type: "integer", minimum: 0, maximum: 4294967295 },
  },
} as const;

export const signedReceiptSchema = {
  type: "object",
  required: ["receipt", "signature"],
  additionalProperties: false,
  properties: { receipt: receiptSchema, signature },
} as const;

export const pricesSchema = {
  type: "object",
  properties: { perSecond: uintString, perInputToken: uintString, perOutputToken: uintString },
} as const;

export const sessionUsageSchema = {
  type: "object",
  properties: {
    served: {
      type: "object",
      properties: { inputTokens: uintString, outputTokens: uintString, requests: { type: "integer" } },
    },
    cost: uintString,
    receiptCost: uintString,
    creditLeft: uintString,
    depositLeft: uintString,
  },
} as const;

export const sessionIdParams = {
  type: "object",
  required: ["id"],
  properties: { id: bytes32 },
} as const;
