// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {SafeERC20} from "@openzeppelin/contracts/token/ERC20/utils/SafeERC20.sol";
import {ReentrancyGuardTransient} from "@openzeppelin/contracts/utils/ReentrancyGuardTransient.sol";
import {IEscrow} from "./interfaces/IEscrow.sol";

/// @title Escrow
/// @notice See {IEscrow}. Deployed by its session router, which is its only depositor: the router
/// pulls deposits straight into this contract and calls `settle` to divide them.
contract Escrow is IEscrow, ReentrancyGuardTransient {
    using SafeERC20 for IERC20;

    /* STORAGE */

    /// @inheritdoc IEscrow
    IERC20 public immutable token;
    /// @inheritdoc IEscrow
    address public immutable sessionRouter;
    /// @inheritdoc IEscrow
    mapping(address account => uint256) public balanceOf;

    /* CONSTRUCTOR */

    constructor(IERC20 token_) {
        if (address(token_) == address(0)) revert ZeroAddress();
        token = token_;
        sessionRouter = msg.sender;
    }

    /* SETTLEMENT */

    /// @inheritdoc IEscrow
    function settle(Payout calldata payout) external nonReentrant {
        if (msg.sender != sessionRouter) revert OnlySessionRouter(msg.sender);

        // Zero shares are skipped: each credit is a storage write.
        if (payout.providerAmount != 0) balanceOf[payout.provider] += payout.providerAmount;
        if (payout.royaltyAmount != 0) balanceOf[payout.royaltyRecipient] += payout.royaltyAmount;
        if (payout.feeAmount != 0) balanceOf[payout.treasury] += payout.feeAmount;

        // A token that refuses the refund (a blocklist, say) must not stop the provider being paid.
        if (payout.refund != 0 && !token.trySafeTransfer(payout.user, payout.refund)) {
            balanceOf[payout.user] += payout.refund;
            emit RefundCredited(payout.user, payout.refund);
        }
    }

    /* CLAIMS */

    /// @inheritdoc IEscrow
    function claim() external returns (uint256) {
        return _claim(msg.sender);
    }

    /// @inheritdoc IEscrow
    function claimTo(address to) external returns (uint256) {
        if (to == address(0)) revert ZeroAddress();
        return _claim(to);
    }

    function _claim(address to) private nonReentrant returns (uint256 amount) {
        amount = balanceOf[msg.sender];
        if (amount == 0) revert NothingToClaim(msg.sender);
        // Zeroed before the transfer: a view read during the payout (read-only reentrancy through a
        // token's hook) must not see a balance that is leaving. test/reentrancy.test.ts pins the order.
        balanceOf[msg.sender] = 0;

        emit Claimed(msg.sender, to, amount);

        token.safeTransfer(to, amount);
    }
}
