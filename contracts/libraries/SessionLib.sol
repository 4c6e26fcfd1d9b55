// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {SessionApproval, SessionTerms, UsageReceipt} from "../interfaces/ISessionRouter.sol";

/// @title SessionLib
/// @notice The pure arithmetic and hashing of sessions: ids, EIP-712 struct hashes, cost and its split.
library SessionLib {
    uint256 internal constant BPS = 10_000;

    bytes32 internal constant SESSION_APPROVAL_TYPEHASH = keccak256(
        // solhint-disable-next-line max-line-length
        "SessionApproval(bytes32 bidId,address user,uint256 maxDeposit,uint64 maxDuration,uint64 deadline,uint256 nonce,uint16 maxRoyaltyBps,uint16 maxFeeBps)"
    );
    bytes32 internal constant USAGE_RECEIPT_TYPEHASH = keccak256(
        // solhint-disable-next-line max-line-length
        "UsageReceipt(bytes32 sessionId,uint64 seq,uint64 inputTokens,uint64 outputTokens,uint32 requests,uint32 ttftMsAvg,uint32 tpsX1000Avg)"
    );

    /// @dev A session's id commits to all of its terms, so terms passed back by a caller are
    /// trusted exactly when they hash to a stored session.
    function id(SessionTerms memory terms) internal pure returns (bytes32) {
        return keccak256(abi.encode(terms));
    }

    /// @dev Every field is a static type, so the struct encodes as its EIP-712 `encodeData`.
    function hashApproval(SessionApproval calldata approval) internal pure returns (bytes32) {
        return keccak256(abi.encode(SESSION_APPROVAL_TYPEHASH, approval));
    }

    function hashReceipt(UsageReceipt calldata receipt) internal pure returns (bytes32) {
        return keccak256(abi.encode(USAGE_RECEIPT_TYPEHASH, receipt));
    }

    /// @dev Where the deposit buys less than the full duration, the session ends when it runs out.
    function endsAt(SessionTerms memory terms, uint256 deposit) internal pure returns (uint40) {
        if (terms.pricePerSecond == 0) return terms.maxEndsAt;
        uint256 paidUntil = terms.openedAt + deposit / terms.pricePerSecond;
        return paidUntil < terms.maxEndsAt ? uint40(paidUntil) : terms.maxEndsAt;
    }

    /// @dev Prices are at most 2^80 (Marketplace), seconds at most 2^40, tokens at most 2^64: no overflow.
    function cost(
        SessionTerms calldata terms,
        uint256 elapsedSeconds,
        UsageReceipt calldata receipt,
        uint256 deposit
    ) internal pure returns (uint256 total) {
        total = elapsedSeconds * terms.pricePerSecond + usageCost(terms, receipt);
        if (total > deposit) total = deposit;
    }

    /// @dev What a receipt's tokens cost, before the time component and the deposit cap.
    function usageCost(SessionTerms calldata terms, UsageReceipt calldata receipt) internal pure returns (uint256) {
        return
            uint256(receipt.inputTokens) * terms.pricePerInputToken +
            uint256(receipt.outputTokens) * terms.pricePerOutputToken;
    }

    /// @dev Fee and royalty round down; the provider takes the remainder, so the parts sum to `total` exactly.
    function split(
        SessionTerms calldata terms,
        uint256 total
    ) internal pure returns (uint256 providerAmount, uint256 royaltyAmount, uint256 feeAmount) {
        feeAmount = (total * terms.feeBps) / BPS;
        royaltyAmount = (total * terms.royaltyBps) / BPS;
        providerAmount = total - feeAmount - royaltyAmount;
    }
}
