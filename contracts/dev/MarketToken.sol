// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {Ownable} from "@openzeppelin/contracts/access/Ownable.sol";
import {ERC20} from "@openzeppelin/contracts/token/ERC20/ERC20.sol";
import {ERC20Permit} from "@openzeppelin/contracts/token/ERC20/extensions/ERC20Permit.sol";

/// @title MarketToken
/// @notice The market's ERC-20 (with ERC-2612 permit) for local and test networks only; on a real
/// network the market is deployed against an existing token.
contract MarketToken is ERC20, ERC20Permit, Ownable {
    constructor(
        address owner_
    ) ERC20("Inference Market Token", "INFER") ERC20Permit("Inference Market Token") Ownable(owner_) {}

    /// @notice Owner only: creates `amount` tokens for `to` (faucet for development).
    function mint(address to, uint256 amount) external onlyOwner {
        _mint(to, amount);
    }
}
