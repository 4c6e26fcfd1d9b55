// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {SafeERC20} from "@openzeppelin/contracts/token/ERC20/utils/SafeERC20.sol";

/// @title TokenTransfer
/// @notice Pulls of the market token that refuse a token which does not deliver what was asked.
library TokenTransfer {
    using SafeERC20 for IERC20;

    /// @notice A pull moved a different amount into the market than it asked for: the token takes a
    /// fee on transfer (or otherwise changes balances on its own). The market accepts only plain ERC-20s.
    /// @param expected The amount asked for.
    /// @param received What the receiver's balance grew by (0 if it did not grow).
    error TokenTransferMismatch(uint256 expected, uint256 received);

    /// @dev `safeTransferFrom(from, to, amount)`, then requires `to`'s balance to have grown by exactly
    /// `amount`: contracts that record `amount` stay solvent only if that much arrived. Costs two
    /// `balanceOf` calls (~1.4k gas; the first makes the token and the slot warm for the transfer).
    function pullExact(IERC20 token, address from, address to, uint256 amount) internal {
        uint256 balanceBefore = token.balanceOf(to);
        token.safeTransferFrom(from, to, amount);
        uint256 balanceAfter = token.balanceOf(to);
        uint256 received = balanceAfter > balanceBefore ? balanceAfter - balanceBefore : 0;
        if (received != amount) revert TokenTransferMismatch(amount, received);
    }
}
