/**
 * The provider agent's own routes, as the consumer calls them. Wire formats and error codes are
 * `protocol/agent-api.ts`, shared with the agent. Every failure is an `AgentRequestError` with the
 * agent's error code, or `agent_unreachable` / `agent_timeout` / `bad_response` when there was no
 * proper answer.
 */
import type { Address, Hex } from "viem";
import {
  type ApprovalRequestBody,
  type CloseResponseBody,
  type SessionStatusBody,
  type SignedUsageReceipt,
  AgentWireFormatError,
  isAgentErrorCode,
  parseApprovalResponse,
  signedReceiptFromJson,
  signedReceiptToJson,
} from "../../../protocol/agent-api.js";
import { AgentRequestError } from "../errors.js";

export type ApprovalResponse = ReturnType<typeof parseApprovalResponse>;

export interface AgentClientOptions {
  endpoint: string;
  fetch: typeof fetch;
  timeoutMs: number;
}

/** The agent's base URL without a trailing slash (a provider registers it on chain). */
export function agentBaseUrl(endpoint: string): string {
  return endpoint.replace(/\/+$/, "");
}

async function call(
  options: AgentClientOptions,
  method: "GET" | "POST",
  route: string,
  body: unknown,
  token?: string,
): Promise<unknown> {
  const url = `${agentBaseUrl(options.endpoint)}${route}`;
  const headers: Record<string, string> = { accept: "application/json" };
  if (body !== undefined) headers["content-type"] = "application/json";
  if (token !== undefined) headers.authorization = `Bearer ${token}`;
  let response: Response;
  try {
    response = await options.fetch(url, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      signal: AbortSignal.timeout(options.timeoutMs),
    });
  } catch (error) {
    const timedOut = (error as Error).name === "TimeoutError";
    throw new AgentRequestError(
      options.endpoint,
      `${method} ${route}`,
      undefined,
      timedOut ? "agent_timeout" : "agent_unreachable",
      timedOut ? `no answer within ${options.timeoutMs} ms` : (error as Error).message,
      { cause: error, hint: "the provider's agent is down or unreachable" },
    );
  }
  const text = await response.text();
  let json: unknown;
  try {
    json = text === "" ? undefined : JSON.parse(text);
  } catch {
    json = undefined;
  }
  if (!response.ok) {
    const error = (json as { error?: { code?: unknown; message?: unknown } } | undefined)?.error;
    const code = isAgentErrorCode(error?.code) ? error.code : `http_${response.status}`;
    const message = typeof error?.message === "string" ? error.message : text.slice(0, 200);
    throw new AgentRequestError(options.endpoint, `${method} ${route}`, response.status, code, message);
  }
  if (json === undefined) {
    throw new AgentRequestError(options.endpoint, `${method} ${route}`, response.status, "bad_response", "not JSON");
  }
  return json;
}

function parsed<T>(options: AgentClientOptions, route: string, parse: () => T): T {
  try {
    return parse();
  } catch (error) {
    if (error instanceof AgentWireFormatError) {
      throw new AgentRequestError(options.endpoint, route, 200, "bad_response", error.message, { cause: error });
    }
    throw error;
  }
}

/** `POST /v1/sessions/approvals`: the provider's signed consent to a session with `user`. */
export async function requestApproval(
  options: AgentClientOptions,
  request: { bidId: Hex; user: Address; deposit: bigint; maxDuration: number },
): Promise<ApprovalResponse> {
  const body: ApprovalRequestBody = {
    bidId: request.bidId,
    user: request.user,
    deposit: request.deposit.toString(),
    maxDuration: request.maxDuration,
  };
  const route = "POST /v1/sessions/approvals";
  const json = await call(options, "POST", "/v1/sessions/approvals", body);
  return parsed(options, route, () => parseApprovalResponse(json));
}

/** `POST /v1/sessions/:id/receipts`: hands the agent a signed receipt; returns the best it holds. */
export async function postReceipt(
  options: AgentClientOptions,
  token: string,
  signed: SignedUsageReceipt,
): Promise<SignedUsageReceipt> {
  const route = `/v1/sessions/${signed.receipt.sessionId}/receipts`;
  const json = await call(options, "POST", route, signedReceiptToJson(signed), token);
  return parsed(options, `POST ${route}`, () =>
    signedReceiptFromJson((json as { bestReceipt?: unknown }).bestReceipt, "bestReceipt"),
  );
}

/** `POST /v1/sessions/:id/close`: the agent's countersignature of the final receipt (cooperative close). */
export async function requestCountersignature(
  options: AgentClientOptions,
  token: string,
  signed: SignedUsageReceipt,
): Promise<{ providerSignature: Hex; signer: Address }> {
  const route = `/v1/sessions/${signed.receipt.sessionId}/close`;
  const json = (await call(options, "POST", route, signedReceiptToJson(signed), token)) as Partial<CloseResponseBody>;
  if (typeof json.providerSignature !== "string" || typeof json.signer !== "string") {
    throw new AgentRequestError(options.endpoint, `POST ${route}`, 200, "bad_response", "no providerSignature");
  }
  return { providerSignature: json.providerSignature, signer: json.signer };
}

/** `GET /v1/sessions/:id`: the agent's view of the session (usage, credit, best receipt). */
export async function getAgentSessionStatus(
  options: AgentClientOptions,
  token: string,
  sessionId: Hex,
): Promise<SessionStatusBody> {
  return (await call(options, "GET", `/v1/sessions/${sessionId}`, undefined, token)) as SessionStatusBody;
}
