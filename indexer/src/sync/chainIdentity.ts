/**
 * Is the chain behind the RPC the one our rows came from? A restarted `hardhat node` or a
 * redeployment keeps the chain id, so the id alone proves nothing: the rows are tied to the
 * deployment's address and to the hash of its first block.
 */
import type { Address } from "viem";
import { IndexerError } from "../errors.js";
import type { ChainState } from "../store/chainState.js";
import type { BlockHeader, RpcClient } from "./rpc.js";

export class ChainReplacedError extends IndexerError {}

export interface ExpectedChain {
  chainId: number;
  deploymentAddress: Address;
}

/** Why the stored rows do not belong to this chain, or null when they do. */
export async function replacedBecause(
  rpc: RpcClient,
  state: ChainState,
  expected: ExpectedChain,
): Promise<string | null> {
  if (state.chain_id !== expected.chainId) {
    return `the rows are of chain ${state.chain_id}, the RPC serves chain ${expected.chainId}`;
  }
  if (state.deployment_address.toLowerCase() !== expected.deploymentAddress.toLowerCase()) {
    return `the rows are of the deployment at ${state.deployment_address}, the config names ${expected.deploymentAddress}`;
  }
  const deployment: BlockHeader | null = await rpc.header(state.deployment_block);
  if (deployment === null) {
    return `the chain has no block ${state.deployment_block} (where the market was deployed): it is a new chain`;
  }
  if (deployment.hash !== state.deployment_block_hash) {
    return `block ${state.deployment_block} (the deployment) now has hash ${deployment.hash}, not ${state.deployment_block_hash}: the chain was replaced`;
  }
  return null;
}
