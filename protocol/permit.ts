/**
 * ERC-2612 permits for the market token, so a fresh wallet can open a session in one transaction
 * (`SessionRouter.openSessionWithPermit`). The token's domain has its own name and version 1.
 */
import type { Address } from "viem";

export const permitTypes = {
  Permit: [
    { name: "owner", type: "address" },
    { name: "spender", type: "address" },
    { name: "value", type: "uint256" },
    { name: "nonce", type: "uint256" },
    { name: "deadline", type: "uint256" },
  ],
} as const;

export interface Permit {
  owner: Address;
  spender: Address;
  value: bigint;
  nonce: bigint;
  deadline: bigint;
}

/** The EIP-712 domain of an ERC-2612 token (OpenZeppelin's `ERC20Permit` uses version "1"). */
export function permitDomain(tokenName: string, chainId: number | bigint, token: Address) {
  return { name: tokenName, version: "1", chainId: Number(chainId), verifyingContract: token } as const;
}
