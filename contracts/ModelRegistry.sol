// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {AccessControl} from "@openzeppelin/contracts/access/AccessControl.sol";
import {IModelRegistry} from "./interfaces/IModelRegistry.sol";
import {IStaking} from "./interfaces/IStaking.sol";

/// @title ModelRegistry
/// @notice See {IModelRegistry}.
contract ModelRegistry is IModelRegistry, AccessControl {
    /// @notice No governance can let a model take more than half of a session's cost.
    uint16 public constant ROYALTY_CAP_BPS = 5_000;
    /// @notice Longest model name, in bytes.
    uint256 public constant MAX_NAME_LENGTH = 128;
    /// @notice Longest model URI, in bytes.
    uint256 public constant MAX_URI_LENGTH = 2048;
    /// @notice Most tags a model may carry.
    uint256 public constant MAX_TAGS = 16;
    /// @notice Longest tag, in bytes.
    uint256 public constant MAX_TAG_LENGTH = 64;

    /* STORAGE */

    /// @inheritdoc IModelRegistry
    IStaking public immutable staking;
    /// @inheritdoc IModelRegistry
    uint256 public modelMinStake;
    /// @inheritdoc IModelRegistry
    uint16 public maxRoyaltyBps;

    mapping(bytes32 modelId => Model) private _models;

    /* CONSTRUCTOR */

    constructor(IStaking staking_, address governance, uint256 modelMinStake_, uint16 maxRoyaltyBps_) {
        if (address(staking_) == address(0) || governance == address(0)) revert ZeroAddress();
        staking = staking_;
        _grantRole(DEFAULT_ADMIN_ROLE, governance);
        modelMinStake = modelMinStake_;
        emit ModelMinStakeSet(modelMinStake_);
        _setMaxRoyaltyBps(maxRoyaltyBps_);
    }

    /* VIEWS */

    /// @inheritdoc IModelRegistry
    function modelIdOf(address owner, bytes32 contentHash) public pure returns (bytes32) {
        return keccak256(abi.encode(owner, contentHash));
    }

    /// @inheritdoc IModelRegistry
    function getModel(bytes32 modelId) external view returns (Model memory) {
        return _models[modelId];
    }

    /// @inheritdoc IModelRegistry
    function royaltyOf(bytes32 modelId) external view returns (bool active, address owner, uint16 royaltyBps) {
        Model storage model = _models[modelId];
        royaltyBps = model.royaltyBps;
        // Only a model that asks a royalty reads the cap: opens of a free model skip a cold SLOAD (2.1k).
        if (royaltyBps != 0) {
            uint16 cap = maxRoyaltyBps;
            if (royaltyBps > cap) royaltyBps = cap;
        }
        return (model.active, model.owner, royaltyBps);
    }

    /* MODELS */

    /// @inheritdoc IModelRegistry
    function registerModel(
        bytes32 contentHash,
        bytes32 baseModelId,
        uint16 royaltyBps,
        string calldata name,
        string calldata uri,
        string[] calldata tags
    ) external returns (bytes32 modelId) {
        if (contentHash == bytes32(0)) revert ZeroContentHash();
        modelId = modelIdOf(msg.sender, contentHash);
        Model storage model = _models[modelId];
        if (model.active) revert ModelAlreadyRegistered(modelId);
        // The same file cannot change kind: an adapter of X stays an adapter of X, a base stays a base.
        if (model.owner != address(0) && model.baseModelId != baseModelId) {
            revert BaseModelMismatch(modelId, model.baseModelId, baseModelId);
        }
        if (baseModelId != bytes32(0)) {
            Model storage base = _models[baseModelId];
            if (!base.active) revert ModelNotActive(baseModelId);
            if (base.baseModelId != bytes32(0)) revert BaseModelIsAdapter(baseModelId);
        }
        _checkRoyaltyAndMetadata(royaltyBps, name, uri, tags);
        uint256 stake = staking.stakeOf(msg.sender);
        if (stake < modelMinStake) revert StakeBelowMinimum(msg.sender, stake, modelMinStake);

        _models[modelId] = Model({
            owner: msg.sender,
            royaltyBps: royaltyBps,
            active: true,
            registeredAt: uint40(block.timestamp),
            contentHash: contentHash,
            baseModelId: baseModelId
        });

        emit ModelRegistered(modelId, msg.sender, baseModelId, contentHash, royaltyBps, name, uri, tags);
    }

    /// @inheritdoc IModelRegistry
    function updateModel(
        bytes32 modelId,
        uint16 royaltyBps,
        string calldata name,
        string calldata uri,
        string[] calldata tags
    ) external {
        Model storage model = _ownedActiveModel(modelId);
        _checkRoyaltyAndMetadata(royaltyBps, name, uri, tags);
        model.royaltyBps = royaltyBps;
        emit ModelUpdated(modelId, royaltyBps, name, uri, tags);
    }

    /// @inheritdoc IModelRegistry
    function deregisterModel(bytes32 modelId) external {
        _ownedActiveModel(modelId).active = false;
        emit ModelDeregistered(modelId);
    }

    /* GOVERNANCE */

    /// @inheritdoc IModelRegistry
    function setModelMinStake(uint256 newModelMinStake) external onlyRole(DEFAULT_ADMIN_ROLE) {
        modelMinStake = newModelMinStake;
        emit ModelMinStakeSet(newModelMinStake);
    }

    /// @inheritdoc IModelRegistry
    function setMaxRoyaltyBps(uint16 newMaxRoyaltyBps) external onlyRole(DEFAULT_ADMIN_ROLE) {
        _setMaxRoyaltyBps(newMaxRoyaltyBps);
    }

    /* INTERNAL */

    function _setMaxRoyaltyBps(uint16 newMaxRoyaltyBps) private {
        if (newMaxRoyaltyBps > ROYALTY_CAP_BPS) revert RoyaltyTooHigh(newMaxRoyaltyBps, ROYALTY_CAP_BPS);
        maxRoyaltyBps = newMaxRoyaltyBps;
        emit MaxRoyaltySet(newMaxRoyaltyBps);
    }

    function _ownedActiveModel(bytes32 modelId) private view returns (Model storage model) {
        model = _models[modelId];
        if (!model.active) revert ModelNotActive(modelId);
        if (model.owner != msg.sender) revert NotModelOwner(modelId, msg.sender);
    }

    function _checkRoyaltyAndMetadata(
        uint16 royaltyBps,
        string calldata name,
        string calldata uri,
        string[] calldata tags
    ) private view {
        if (royaltyBps > maxRoyaltyBps) revert RoyaltyTooHigh(royaltyBps, maxRoyaltyBps);
        if (bytes(name).length == 0 || bytes(name).length > MAX_NAME_LENGTH) revert InvalidName();
        if (bytes(uri).length > MAX_URI_LENGTH || tags.length > MAX_TAGS) revert MetadataTooLong();
        for (uint256 i; i < tags.length; ++i) {
            if (bytes(tags[i]).length > MAX_TAG_LENGTH) revert MetadataTooLong();
        }
    }
}
