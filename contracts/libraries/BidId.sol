// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

/// @title BidId
/// @notice A bid's id packs its provider (high 160 bits) with the low 96 bits of its model id, so
/// whoever holds a bid id knows its provider without a storage read. Model ids are keccak256
/// outputs, so two models of one provider sharing 96 low bits is not a practical concern.
library BidId {
    function from(address provider, bytes32 modelId) internal pure returns (bytes32) {
        return bytes32((uint256(uint160(provider)) << 96) | (uint256(modelId) & type(uint96).max));
    }

    function provider(bytes32 bidId) internal pure returns (address) {
        return address(uint160(uint256(bidId) >> 96));
    }
}
