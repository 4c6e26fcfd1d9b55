// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";

/// @title IStaking
/// @notice Holds the market token staked by providers and model owners. Stake leaves through an
/// unbonding period, so a provider cannot pull its stake out from under the sessions it serves.
interface IStaking {
    /// @notice One account's stake: `staked` counts toward minimums, `unbonding` no longer does.
    struct StakeAccount {
        uint128 staked;
        uint128 unbonding;
        uint64 unlockAt;
    }

    /// @notice `account` staked `amount`; `staked` is its new active stake.
    event Staked(address indexed account, uint256 amount, uint256 staked);
    /// @notice `amount` left the active stake of `account` and unbonds until `unlockAt`.
    event UnstakeRequested(address indexed account, uint256 amount, uint256 staked, uint256 unbonding, uint64 unlockAt);
    /// @notice `account` withdrew `amount` of unbonded stake to `to`.
    event Withdrawn(address indexed account, address indexed to, uint256 amount);
    /// @notice Governance set the unbonding period.
    event UnbondingPeriodSet(uint64 unbondingPeriod);

    error ZeroAmount();
    error ZeroAddress();
    error AmountTooLarge(uint256 amount);
    error InsufficientStake(uint256 staked, uint256 requested);
    error NothingToWithdraw();
    error StillUnbonding(uint64 unlockAt);
    error UnbondingPeriodTooLong(uint64 unbondingPeriod, uint64 maximum);

    /// @notice The token staked.
    function token() external view returns (IERC20);

    /// @notice How long requested stake stays locked before it can be withdrawn, in seconds.
    function unbondingPeriod() external view returns (uint64);

    /// @notice Stake that counts toward minimums (excludes stake that is unbonding).
    function stakeOf(address account) external view returns (uint256);

    /// @notice The whole stake record of `account`.
    function stakeAccount(address account) external view returns (StakeAccount memory);

    /// @notice Pulls `amount` tokens from the caller and adds them to the caller's stake.
    /// @dev Needs an allowance for this contract. Reverts `ZeroAmount` for 0, and
    /// `TokenTransferMismatch` (TokenTransfer.sol) if this contract's balance did not grow by exactly
    /// `amount` (a fee-on-transfer token).
    function stake(uint256 amount) external;

    /// @notice Moves `amount` of the caller's stake into unbonding; it stops counting at once and
    /// can be withdrawn after `unbondingPeriod`. A new request restarts the timer for all of it.
    function requestUnstake(uint256 amount) external;

    /// @notice Sends the caller's unbonded stake to `to` once its unbonding period has passed.
    /// @return amount The tokens sent.
    function withdraw(address to) external returns (uint256 amount);

    /// @notice Governance: sets the unbonding period (at most `MAX_UNBONDING_PERIOD`).
    function setUnbondingPeriod(uint64 newUnbondingPeriod) external;
}
