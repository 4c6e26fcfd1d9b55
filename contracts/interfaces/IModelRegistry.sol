// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {IStaking} from "./IStaking.sol";

/// @title IModelRegistry
/// @notice Models offered on the market. A model is a GGUF file known by its sha256; a LoRA adapter
/// is a model whose `baseModelId` names the model it adapts. Model owners earn a royalty on every
/// session of their model.
interface IModelRegistry {
    /// @notice A model's on-chain record. Name, URI and tags live only in events.
    struct Model {
        address owner;
        uint16 royaltyBps;
        bool active;
        uint40 registeredAt;
        bytes32 contentHash;
        bytes32 baseModelId;
    }

    /// @notice A model (or LoRA adapter, when `baseModelId` is non-zero) was registered or re-activated.
    event ModelRegistered(
        bytes32 indexed modelId,
        address indexed owner,
        bytes32 indexed baseModelId,
        bytes32 contentHash,
        uint16 royaltyBps,
        string name,
        string uri,
        string[] tags
    );
    /// @notice A model's royalty and metadata changed.
    event ModelUpdated(bytes32 indexed modelId, uint16 royaltyBps, string name, string uri, string[] tags);
    /// @notice A model left the market; its bids stop matching.
    event ModelDeregistered(bytes32 indexed modelId);
    /// @notice Governance set the minimum stake to register a model.
    event ModelMinStakeSet(uint256 modelMinStake);
    /// @notice Governance set the highest royalty a model may ask.
    event MaxRoyaltySet(uint16 maxRoyaltyBps);

    error ZeroAddress();
    error ZeroContentHash();
    error InvalidName();
    error MetadataTooLong();
    error ModelAlreadyRegistered(bytes32 modelId);
    error BaseModelMismatch(bytes32 modelId, bytes32 registeredBaseModelId, bytes32 baseModelId);
    error ModelNotActive(bytes32 modelId);
    error NotModelOwner(bytes32 modelId, address caller);
    error BaseModelIsAdapter(bytes32 baseModelId);
    error RoyaltyTooHigh(uint16 royaltyBps, uint16 maximum);
    error StakeBelowMinimum(address owner, uint256 stake, uint256 minimum);

    /// @notice The staking contract whose `stakeOf` gates model registration.
    function staking() external view returns (IStaking);

    /// @notice Minimum stake of a model's owner to register it.
    function modelMinStake() external view returns (uint256);

    /// @notice Highest royalty a model may ask, in basis points. Lowering it caps the royalty of
    /// existing models too, in sessions opened from then on (`royaltyOf`).
    function maxRoyaltyBps() external view returns (uint16);

    /// @notice The id a model registered by `owner` with `contentHash` has: keccak256(owner, contentHash).
    function modelIdOf(address owner, bytes32 contentHash) external pure returns (bytes32);

    /// @notice The record of `modelId` (all zero if never registered).
    function getModel(bytes32 modelId) external view returns (Model memory);

    /// @notice What a session of `modelId` opened now takes: whether the model is active, who earns its
    /// royalty, and the effective royalty `min(model.royaltyBps, maxRoyaltyBps)`: a cap lowered by
    /// governance applies at once to existing models (`getModel` keeps the royalty the owner asked).
    function royaltyOf(bytes32 modelId) external view returns (bool active, address owner, uint16 royaltyBps);

    /// @notice Registers a model owned by the caller (or re-activates one it deregistered, with the
    /// same `baseModelId`: a file does not change from base model to adapter or back).
    /// @param contentHash sha256 of the GGUF file.
    /// @param baseModelId Zero for a base model; for a LoRA adapter, the active base model it adapts.
    /// @param royaltyBps Share of each session's cost paid to the owner (at most `maxRoyaltyBps`).
    /// @param name Human name (1 to 128 bytes).
    /// @param uri Where the file can be fetched.
    /// @param tags Free-form tags (at most 16).
    /// @return modelId The model's id.
    function registerModel(
        bytes32 contentHash,
        bytes32 baseModelId,
        uint16 royaltyBps,
        string calldata name,
        string calldata uri,
        string[] calldata tags
    ) external returns (bytes32 modelId);

    /// @notice Changes a model's royalty and metadata. Open sessions keep the royalty they opened with;
    /// sessions opened later take it (capped by `maxRoyaltyBps`) unless their approval set a lower bound.
    function updateModel(
        bytes32 modelId,
        uint16 royaltyBps,
        string calldata name,
        string calldata uri,
        string[] calldata tags
    ) external;

    /// @notice Takes a model off the market: its bids stop matching. Open sessions run to their end.
    function deregisterModel(bytes32 modelId) external;

    /// @notice Governance: sets the minimum stake to register a model.
    function setModelMinStake(uint256 newModelMinStake) external;

    /// @notice Governance: sets the highest royalty (at most `ROYALTY_CAP_BPS`). It bounds later
    /// registrations and updates, and caps every model's royalty in sessions opened from now on.
    function setMaxRoyaltyBps(uint16 newMaxRoyaltyBps) external;
}
