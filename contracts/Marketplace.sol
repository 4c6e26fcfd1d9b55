// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {AccessControl} from "@openzeppelin/contracts/access/AccessControl.sol";
import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {SafeERC20} from "@openzeppelin/contracts/token/ERC20/utils/SafeERC20.sol";
import {ReentrancyGuardTransient} from "@openzeppelin/contracts/utils/ReentrancyGuardTransient.sol";
import {IMarketplace, Prices} from "./interfaces/IMarketplace.sol";
import {IModelRegistry} from "./interfaces/IModelRegistry.sol";
import {IProviderRegistry} from "./interfaces/IProviderRegistry.sol";
import {BidId} from "./libraries/BidId.sol";

/// @title Marketplace
/// @notice See {IMarketplace}.
contract Marketplace is IMarketplace, AccessControl, ReentrancyGuardTransient {
    using SafeERC20 for IERC20;

    /// @notice The highest bid fee governance may set (in token base units).
    uint256 public constant MAX_BID_FEE = 1_000 ether;

    /* STORAGE */

    /// @inheritdoc IMarketplace
    IERC20 public immutable token;
    /// @inheritdoc IMarketplace
    IProviderRegistry public immutable providerRegistry;
    /// @inheritdoc IMarketplace
    IModelRegistry public immutable modelRegistry;
    /// @inheritdoc IMarketplace
    uint256 public bidFee;
    /// @inheritdoc IMarketplace
    address public treasury;

    mapping(bytes32 bidId => Bid) private _bids;

    /* CONSTRUCTOR */

    constructor(
        IERC20 token_,
        IProviderRegistry providerRegistry_,
        IModelRegistry modelRegistry_,
        address governance,
        address treasury_,
        uint256 bidFee_
    ) {
        if (
            address(token_) == address(0) ||
            address(providerRegistry_) == address(0) ||
            address(modelRegistry_) == address(0) ||
            governance == address(0)
        ) revert ZeroAddress();
        token = token_;
        providerRegistry = providerRegistry_;
        modelRegistry = modelRegistry_;
        _grantRole(DEFAULT_ADMIN_ROLE, governance);
        _setTreasury(treasury_);
        _setBidFee(bidFee_);
    }

    /* VIEWS */

    /// @inheritdoc IMarketplace
    function bidIdOf(address provider, bytes32 modelId) external pure returns (bytes32) {
        return BidId.from(provider, modelId);
    }

    /// @inheritdoc IMarketplace
    function providerOf(bytes32 bidId) external pure returns (address) {
        return BidId.provider(bidId);
    }

    /// @inheritdoc IMarketplace
    function getBid(bytes32 bidId) external view returns (Bid memory) {
        return _bids[bidId];
    }

    /* BIDS */

    /// @inheritdoc IMarketplace
    function postBid(bytes32 modelId, Prices calldata prices) external nonReentrant returns (bytes32 bidId) {
        bidId = BidId.from(msg.sender, modelId);
        Bid storage bid = _bids[bidId];
        if (bid.active) revert BidAlreadyActive(bidId);
        // Reverts ProviderNotRegistered / StakeBelowMinimum from the registry.
        providerRegistry.activeOperatorOf(msg.sender);
        (bool modelActive, , ) = modelRegistry.royaltyOf(modelId);
        if (!modelActive) revert IModelRegistry.ModelNotActive(modelId);

        bid.modelId = modelId;
        _setPrices(bid, prices);
        bid.active = true;

        uint256 fee = bidFee;
        emit BidPosted(bidId, msg.sender, modelId, prices, fee);

        if (fee != 0) token.safeTransferFrom(msg.sender, treasury, fee);
    }

    /// @inheritdoc IMarketplace
    function updateBid(bytes32 bidId, Prices calldata prices) external {
        Bid storage bid = _ownedActiveBid(bidId);
        _setPrices(bid, prices);
        emit BidUpdated(bidId, msg.sender, bid.modelId, prices);
    }

    /// @inheritdoc IMarketplace
    function deleteBid(bytes32 bidId) external {
        Bid storage bid = _ownedActiveBid(bidId);
        bid.active = false;
        emit BidDeleted(bidId, msg.sender, bid.modelId);
    }

    /* GOVERNANCE */

    /// @inheritdoc IMarketplace
    function setBidFee(uint256 newBidFee) external onlyRole(DEFAULT_ADMIN_ROLE) {
        _setBidFee(newBidFee);
    }

    /// @inheritdoc IMarketplace
    function setTreasury(address newTreasury) external onlyRole(DEFAULT_ADMIN_ROLE) {
        _setTreasury(newTreasury);
    }

    /* INTERNAL */

    function _ownedActiveBid(bytes32 bidId) private view returns (Bid storage bid) {
        if (BidId.provider(bidId) != msg.sender) revert NotBidProvider(bidId, msg.sender);
        bid = _bids[bidId];
        if (!bid.active) revert BidNotActive(bidId);
    }

    function _setPrices(Bid storage bid, Prices calldata prices) private {
        bid.pricePerSecond = _toPrice(prices.perSecond);
        bid.pricePerInputToken = _toPrice(prices.perInputToken);
        bid.pricePerOutputToken = _toPrice(prices.perOutputToken);
    }

    function _toPrice(uint256 price) private pure returns (uint80) {
        if (price > type(uint80).max) revert PriceTooHigh(price, type(uint80).max);
        return uint80(price);
    }

    function _setBidFee(uint256 newBidFee) private {
        if (newBidFee > MAX_BID_FEE) revert BidFeeTooHigh(newBidFee, MAX_BID_FEE);
        bidFee = newBidFee;
        emit BidFeeSet(newBidFee);
    }

    function _setTreasury(address newTreasury) private {
        if (newTreasury == address(0)) revert ZeroAddress();
        treasury = newTreasury;
        emit TreasurySet(newTreasury);
    }
}
