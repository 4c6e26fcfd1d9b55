// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {AccessControl} from "@openzeppelin/contracts/access/AccessControl.sol";
import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {SafeERC20} from "@openzeppelin/contracts/token/ERC20/utils/SafeERC20.sol";
import {ReentrancyGuardTransient} from "@openzeppelin/contracts/utils/ReentrancyGuardTransient.sol";
import {IStaking} from "./interfaces/IStaking.sol";
import {TokenTransfer} from "./libraries/TokenTransfer.sol";

/// @title Staking
/// @notice Stake with an unbonding period. See {IStaking}.
contract Staking is IStaking, AccessControl, ReentrancyGuardTransient {
    using SafeERC20 for IERC20;

    /// @notice The longest unbonding period governance may set.
    uint64 public constant MAX_UNBONDING_PERIOD = 90 days;

    /* STORAGE */

    /// @inheritdoc IStaking
    IERC20 public immutable token;
    /// @inheritdoc IStaking
    uint64 public unbondingPeriod;

    mapping(address account => StakeAccount) private _accounts;

    /* CONSTRUCTOR */

    constructor(IERC20 token_, address governance, uint64 unbondingPeriod_) {
        if (address(token_) == address(0) || governance == address(0)) revert ZeroAddress();
        token = token_;
        _grantRole(DEFAULT_ADMIN_ROLE, governance);
        _setUnbondingPeriod(unbondingPeriod_);
    }

    /* VIEWS */

    /// @inheritdoc IStaking
    function stakeOf(address account) external view returns (uint256) {
        return _accounts[account].staked;
    }

    /// @inheritdoc IStaking
    function stakeAccount(address account) external view returns (StakeAccount memory) {
        return _accounts[account];
    }

    /* STAKE */

    /// @inheritdoc IStaking
    function stake(uint256 amount) external nonReentrant {
        if (amount == 0) revert ZeroAmount();
        StakeAccount storage account = _accounts[msg.sender];
        uint256 staked = account.staked + amount;
        if (staked > type(uint128).max) revert AmountTooLarge(amount);
        account.staked = uint128(staked);

        emit Staked(msg.sender, amount, staked);

        TokenTransfer.pullExact(token, msg.sender, address(this), amount);
    }

    /// @inheritdoc IStaking
    function requestUnstake(uint256 amount) external {
        if (amount == 0) revert ZeroAmount();
        StakeAccount storage account = _accounts[msg.sender];
        uint256 staked = account.staked;
        if (amount > staked) revert InsufficientStake(staked, amount);

        // Safe casts: amount <= staked <= uint128 max, and staked + unbonding never exceeds what was staked.
        account.staked = uint128(staked - amount);
        account.unbonding += uint128(amount);
        uint64 unlockAt = uint64(block.timestamp) + unbondingPeriod;
        account.unlockAt = unlockAt;

        emit UnstakeRequested(msg.sender, amount, staked - amount, account.unbonding, unlockAt);
    }

    /// @inheritdoc IStaking
    function withdraw(address to) external nonReentrant returns (uint256 amount) {
        if (to == address(0)) revert ZeroAddress();
        StakeAccount storage account = _accounts[msg.sender];
        amount = account.unbonding;
        if (amount == 0) revert NothingToWithdraw();
        if (block.timestamp < account.unlockAt) revert StillUnbonding(account.unlockAt);

        account.unbonding = 0;
        account.unlockAt = 0;

        emit Withdrawn(msg.sender, to, amount);

        token.safeTransfer(to, amount);
    }

    /* GOVERNANCE */

    /// @inheritdoc IStaking
    function setUnbondingPeriod(uint64 newUnbondingPeriod) external onlyRole(DEFAULT_ADMIN_ROLE) {
        _setUnbondingPeriod(newUnbondingPeriod);
    }

    function _setUnbondingPeriod(uint64 newUnbondingPeriod) private {
        if (newUnbondingPeriod > MAX_UNBONDING_PERIOD) {
            revert UnbondingPeriodTooLong(newUnbondingPeriod, MAX_UNBONDING_PERIOD);
        }
        unbondingPeriod = newUnbondingPeriod;
        emit UnbondingPeriodSet(newUnbondingPeriod);
    }
}
