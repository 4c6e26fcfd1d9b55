// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {Ownable} from "@openzeppelin/contracts/access/Ownable.sol";
import {ERC20} from "@openzeppelin/contracts/token/ERC20/ERC20.sol";
import {ERC20Permit} from "@openzeppelin/contracts/token/ERC20/extensions/ERC20Permit.sol";

/// @title FeeOnTransferToken
/// @notice Test only: an ERC-20 (with permit and MarketToken's `mint`) whose owner can switch on a fee
/// on transfer: the recipient of each transfer loses `feeBps` of the amount, burned, so it receives
/// less than the sender sent. Above 10,000 bps the recipient's balance falls, as a token that rebases
/// down during a transfer would make it.
contract FeeOnTransferToken is ERC20, ERC20Permit, Ownable {
    /// @notice The fee on each transfer between two accounts, in basis points of the amount.
    uint256 public feeBps;

    constructor(address owner_) ERC20("Fee Token", "FEE") ERC20Permit("Fee Token") Ownable(owner_) {}

    /// @notice Owner only: creates `amount` tokens for `to`.
    function mint(address to, uint256 amount) external onlyOwner {
        _mint(to, amount);
    }

    /// @notice Owner only: sets the fee on later transfers (0 turns it off).
    function setFeeBps(uint256 newFeeBps) external onlyOwner {
        feeBps = newFeeBps;
    }

    function _update(address from, address to, uint256 value) internal override {
        super._update(from, to, value);
        if (from != address(0) && to != address(0) && feeBps != 0) {
            super._update(to, address(0), (value * feeBps) / 10_000);
        }
    }
}
