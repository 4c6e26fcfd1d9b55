// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {Ownable} from "@openzeppelin/contracts/access/Ownable.sol";
import {ERC20} from "@openzeppelin/contracts/token/ERC20/ERC20.sol";
import {ERC20Permit} from "@openzeppelin/contracts/token/ERC20/extensions/ERC20Permit.sol";
import {Address} from "@openzeppelin/contracts/utils/Address.sol";

/// @title ReentrantToken
/// @notice Test only: an ERC-20 (with permit) whose owner can arm a one-shot hook. On the next
/// `transfer` or `transferFrom`, before any token moves, the token calls `hookTarget` with
/// `hookCalldata`, as a token with transfer callbacks (ERC-777 style) would let an attacker do.
contract ReentrantToken is ERC20, ERC20Permit, Ownable {
    /// @notice What the token does once the hook's call has returned or reverted.
    enum HookMode {
        /// A reverted call reverts the transfer with the call's own revert data; a successful one is
        /// recorded and the transfer goes on.
        BubbleRevert,
        /// The call's outcome is recorded and the transfer goes on.
        RecordAndTransfer,
        /// The call's outcome is recorded and the transfer returns false without moving tokens,
        /// so a caller using `trySafeTransfer` sees a refusal while the record survives.
        RecordAndRefuse
    }

    /// @notice Emitted each time the hook fires, with the outcome of its call.
    event HookCalled(address indexed target, bool success, bytes result);

    /// @notice Whether the next transfer fires the hook.
    bool public armed;
    /// @notice What the hook does with its call's outcome.
    HookMode public hookMode;
    /// @notice The contract the hook calls.
    address public hookTarget;
    /// @notice The calldata the hook sends to `hookTarget`.
    bytes public hookCalldata;
    /// @notice Whether the hook's last recorded call succeeded.
    bool public lastHookSucceeded;
    /// @notice The return data of the hook's last recorded call, or its revert data if it reverted.
    bytes public lastHookResult;

    constructor(address owner_) ERC20("Reentrant Token", "REENTER") ERC20Permit("Reentrant Token") Ownable(owner_) {}

    /// @notice Owner only: creates `amount` tokens for `to`.
    function mint(address to, uint256 amount) external onlyOwner {
        _mint(to, amount);
    }

    /// @notice Owner only: makes the next `transfer` or `transferFrom` call `target` with `data`
    /// first, and then act as `mode` says.
    function arm(address target, bytes calldata data, HookMode mode) external onlyOwner {
        armed = true;
        hookMode = mode;
        hookTarget = target;
        hookCalldata = data;
    }

    /// @notice Owner only: disarms the hook without firing it.
    function disarm() external onlyOwner {
        armed = false;
    }

    /// @notice ERC-20 `transfer`, after the hook when it is armed.
    function transfer(address to, uint256 value) public override returns (bool) {
        if (!_fireHook()) return false;
        return super.transfer(to, value);
    }

    /// @notice ERC-20 `transferFrom`, after the hook when it is armed.
    function transferFrom(address from, address to, uint256 value) public override returns (bool) {
        if (!_fireHook()) return false;
        return super.transferFrom(from, to, value);
    }

    /// @dev Returns whether the transfer should go on. The hook is disarmed before its call, so
    /// transfers made inside that call (a re-entered function paying out) do not fire it again.
    function _fireHook() private returns (bool) {
        if (!armed) return true;
        armed = false;
        address target = hookTarget;
        // solhint-disable-next-line avoid-low-level-calls
        (bool success, bytes memory result) = target.call(hookCalldata);
        // Rethrows the inner revert data, so the outer transaction fails with the re-entered contract's error.
        if (!success && hookMode == HookMode.BubbleRevert) Address.verifyCallResult(success, result);
        lastHookSucceeded = success;
        lastHookResult = result;
        emit HookCalled(target, success, result);
        return hookMode != HookMode.RecordAndRefuse;
    }
}
