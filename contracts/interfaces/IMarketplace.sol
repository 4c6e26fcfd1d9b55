// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {IModelRegistry} from "./IModelRegistry.sol";
import {IProviderRegistry} from "./IProviderRegistry.sol";

/// @notice The three prices of a bid, in token base units: per second of session, per input
/// (prompt) token and per output (generated) token. Any of them may be zero.
struct Prices {
    uint256 perSecond;
    uint256 perInputToken;
    uint256 perOutputToken;
}

/// @title IMarketplace
/// @notice Providers' offers: one bid per provider and model. A bid's id is derived from the
/// provider and model (`bidIdOf`), so the provider can be read from the id without storage.
interface IMarketplace {
    /// @notice A bid as stored: prices fit in 80 bits each (over 10^24 base units).
    struct Bid {
        bytes32 modelId;
        uint80 pricePerSecond;
        uint80 pricePerInputToken;
        uint80 pricePerOutputToken;
        bool active;
    }

    /// @notice A provider posted a bid and paid `fee`.
    event BidPosted(
        bytes32 indexed bidId,
        address indexed provider,
        bytes32 indexed modelId,
        Prices prices,
        uint256 fee
    );
    /// @notice A provider changed its bid's prices (no fee; open sessions keep theirs).
    event BidUpdated(bytes32 indexed bidId, address indexed provider, bytes32 indexed modelId, Prices prices);
    /// @notice A provider withdrew its bid.
    event BidDeleted(bytes32 indexed bidId, address indexed provider, bytes32 indexed modelId);
    /// @notice Governance set the bid fee.
    event BidFeeSet(uint256 bidFee);
    /// @notice Governance set the receiver of fees.
    event TreasurySet(address indexed treasury);

    error ZeroAddress();
    error BidAlreadyActive(bytes32 bidId);
    error BidNotActive(bytes32 bidId);
    error NotBidProvider(bytes32 bidId, address caller);
    error PriceTooHigh(uint256 price, uint256 maximum);
    error BidFeeTooHigh(uint256 bidFee, uint256 maximum);

    /// @notice The token bid fees are paid in.
    function token() external view returns (IERC20);

    /// @notice Where providers must be registered and staked to post bids.
    function providerRegistry() external view returns (IProviderRegistry);

    /// @notice Where bid models must be active.
    function modelRegistry() external view returns (IModelRegistry);

    /// @notice Fee paid to the treasury each time a bid is posted (not on updates).
    function bidFee() external view returns (uint256);

    /// @notice Receiver of bid fees.
    function treasury() external view returns (address);

    /// @notice The id of the bid of `provider` for `modelId`: the provider in the high 160 bits,
    /// the low 96 bits of the model id below.
    function bidIdOf(address provider, bytes32 modelId) external pure returns (bytes32);

    /// @notice The provider a bid id belongs to.
    function providerOf(bytes32 bidId) external pure returns (address);

    /// @notice The stored bid (all zero if never posted).
    function getBid(bytes32 bidId) external view returns (Bid memory);

    /// @notice Posts the caller's bid for an active model, paying `bidFee`. The caller must be an
    /// active provider with at least the minimum stake and no active bid for that model.
    /// @return bidId The bid's id.
    function postBid(bytes32 modelId, Prices calldata prices) external returns (bytes32 bidId);

    /// @notice Changes the prices of the caller's active bid, with no fee. Open sessions keep theirs.
    function updateBid(bytes32 bidId, Prices calldata prices) external;

    /// @notice Withdraws the caller's active bid. Open sessions on it run to their end.
    function deleteBid(bytes32 bidId) external;

    /// @notice Governance: sets the bid fee (at most `MAX_BID_FEE`).
    function setBidFee(uint256 newBidFee) external;

    /// @notice Governance: sets the receiver of bid fees.
    function setTreasury(address newTreasury) external;
}
