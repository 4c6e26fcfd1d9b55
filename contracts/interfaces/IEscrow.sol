// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";

/// @title IEscrow
/// @notice Holds every token of open sessions and every balance earned and not yet claimed.
/// Only its session router moves money in; anyone with a balance takes it out with one `claim`.
interface IEscrow {
    /// @notice What one settlement pays out of a session's deposit.
    struct Payout {
        address provider;
        uint256 providerAmount;
        address royaltyRecipient;
        uint256 royaltyAmount;
        address treasury;
        uint256 feeAmount;
        address user;
        uint256 refund;
    }

    /// @notice `account` claimed its whole balance, `amount`, to `to`.
    event Claimed(address indexed account, address indexed to, uint256 amount);
    /// @notice A refund the token refused to transfer, kept as a claimable balance of the user.
    event RefundCredited(address indexed user, uint256 amount);

    error OnlySessionRouter(address caller);
    error ZeroAddress();
    error NothingToClaim(address account);

    /// @notice The token held.
    function token() external view returns (IERC20);

    /// @notice The only caller of `settle`: the router that created this escrow.
    function sessionRouter() external view returns (address);

    /// @notice Tokens `account` may claim.
    function balanceOf(address account) external view returns (uint256);

    /// @notice Router only: credits the provider, royalty and fee shares of a session and sends
    /// the user's refund (credited instead if the token refuses the transfer).
    function settle(Payout calldata payout) external;

    /// @notice Sends the caller's whole balance to the caller.
    function claim() external returns (uint256 amount);

    /// @notice Sends the caller's whole balance to `to`.
    function claimTo(address to) external returns (uint256 amount);
}
