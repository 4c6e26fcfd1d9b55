// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {Ownable} from "@openzeppelin/contracts/access/Ownable.sol";
import {ERC20} from "@openzeppelin/contracts/token/ERC20/ERC20.sol";
import {ERC20Permit} from "@openzeppelin/contracts/token/ERC20/extensions/ERC20Permit.sol";

/// @title RefusingToken
/// @notice Test only: an ERC-20 (with permit) whose owner can block recipients, as a token with a
/// blocklist does; a transfer to a blocked address reverts.
contract RefusingToken is ERC20, ERC20Permit, Ownable {
    error RecipientBlocked(address recipient);

    /// @notice Whether transfers to an account revert.
    mapping(address account => bool) public isBlocked;

    constructor(address owner_) ERC20("Refusing Token", "REFUSE") ERC20Permit("Refusing Token") Ownable(owner_) {}

    /// @notice Owner only: creates `amount` tokens for `to`.
    function mint(address to, uint256 amount) external onlyOwner {
        _mint(to, amount);
    }

    /// @notice Owner only: makes every later transfer to `account` revert (or allows it again).
    function setBlocked(address account, bool blocked) external onlyOwner {
        isBlocked[account] = blocked;
    }

    function _update(address from, address to, uint256 value) internal override {
        if (isBlocked[to]) revert RecipientBlocked(to);
        super._update(from, to, value);
    }
}
