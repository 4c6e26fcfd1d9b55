// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {IERC1271} from "@openzeppelin/contracts/interfaces/IERC1271.sol";
import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {ECDSA} from "@openzeppelin/contracts/utils/cryptography/ECDSA.sol";

/// @title SmartWallet
/// @notice Test only: a minimal ERC-1271 contract wallet whose owner key signs for it and sends its calls.
/// Its owner can make it reject every signature, as any wallet's owner can (rotate the key, revoke a
/// module, upgrade): what a wallet says about a signature is state its owner controls.
contract SmartWallet is IERC1271 {
    error NotOwner(address caller);
    error CallFailed(bytes returnData);

    /// @notice The key that signs for this wallet and sends its calls.
    address public immutable owner;
    /// @notice Whether `isValidSignature` rejects everything, the owner's signatures included.
    bool public rejectsAll;

    constructor(address owner_) {
        owner = owner_;
    }

    /// @notice Valid when the owner signed `hash` itself, unless the wallet rejects everything.
    function isValidSignature(bytes32 hash, bytes calldata signature) external view returns (bytes4) {
        if (rejectsAll) return bytes4(0);
        (address signer, ECDSA.RecoverError error, ) = ECDSA.tryRecoverCalldata(hash, signature);
        return error == ECDSA.RecoverError.NoError && signer == owner ? this.isValidSignature.selector : bytes4(0);
    }

    /// @notice Owner only: makes `isValidSignature` reject every signature (or accept the owner's again).
    function setRejectsAll(bool rejects) external {
        if (msg.sender != owner) revert NotOwner(msg.sender);
        rejectsAll = rejects;
    }

    /// @notice Owner only: approves `spender` for `amount` of `token`.
    function approve(IERC20 token, address spender, uint256 amount) external {
        if (msg.sender != owner) revert NotOwner(msg.sender);
        token.approve(spender, amount);
    }

    /// @notice Owner only: calls `target` with `data`, bubbling up a revert.
    function execute(address target, bytes calldata data) external returns (bytes memory) {
        if (msg.sender != owner) revert NotOwner(msg.sender);
        // solhint-disable-next-line avoid-low-level-calls
        (bool ok, bytes memory result) = target.call(data);
        if (!ok) revert CallFailed(result);
        return result;
    }
}
