// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {AccessControl} from "@openzeppelin/contracts/access/AccessControl.sol";
import {IProviderRegistry} from "./interfaces/IProviderRegistry.sol";
import {ISessionRouter} from "./interfaces/ISessionRouter.sol";
import {IStaking} from "./interfaces/IStaking.sol";

/// @title ProviderRegistry
/// @notice See {IProviderRegistry}.
contract ProviderRegistry is IProviderRegistry, AccessControl {
    /// @notice Longest endpoint URL, in bytes.
    uint256 public constant MAX_ENDPOINT_LENGTH = 256;
    /// @notice Longest metadata URI, in bytes.
    uint256 public constant MAX_METADATA_URI_LENGTH = 2048;

    /* STORAGE */

    /// @inheritdoc IProviderRegistry
    IStaking public immutable staking;
    /// @inheritdoc IProviderRegistry
    uint256 public providerMinStake;
    /// @inheritdoc IProviderRegistry
    address public sessionRouter;

    mapping(address provider => Provider) private _providers;

    /* CONSTRUCTOR */

    constructor(IStaking staking_, address governance, uint256 providerMinStake_) {
        if (address(staking_) == address(0) || governance == address(0)) revert ZeroAddress();
        staking = staking_;
        _grantRole(DEFAULT_ADMIN_ROLE, governance);
        providerMinStake = providerMinStake_;
        emit ProviderMinStakeSet(providerMinStake_);
    }

    /* VIEWS */

    /// @inheritdoc IProviderRegistry
    function getProvider(address provider) external view returns (Provider memory) {
        return _providers[provider];
    }

    /// @inheritdoc IProviderRegistry
    function isActive(address provider) external view returns (bool) {
        return _providers[provider].active;
    }

    /// @inheritdoc IProviderRegistry
    function operatorOf(address provider) external view returns (address) {
        return _providers[provider].operator;
    }

    /// @inheritdoc IProviderRegistry
    function activeOperatorOf(address provider) external view returns (address operator) {
        Provider storage record = _providers[provider];
        if (!record.active) revert ProviderNotRegistered(provider);
        _checkStake(provider);
        return record.operator;
    }

    /* PROVIDER */

    /// @inheritdoc IProviderRegistry
    function register(string calldata endpoint, string calldata metadataURI, address operator) external {
        Provider storage record = _providers[msg.sender];
        if (record.active) revert ProviderAlreadyRegistered(msg.sender);
        _checkStake(msg.sender);
        _checkMetadata(endpoint, metadataURI);

        record.operator = operator;
        record.registeredAt = uint40(block.timestamp);
        record.active = true;
        record.endpoint = endpoint;

        emit ProviderRegistered(msg.sender, operator, endpoint, metadataURI);
    }

    /// @inheritdoc IProviderRegistry
    function update(string calldata endpoint, string calldata metadataURI) external {
        Provider storage record = _activeProvider(msg.sender);
        _checkMetadata(endpoint, metadataURI);
        record.endpoint = endpoint;
        emit ProviderUpdated(msg.sender, endpoint, metadataURI);
    }

    /// @inheritdoc IProviderRegistry
    function setOperator(address operator) external {
        _activeProvider(msg.sender).operator = operator;
        emit OperatorSet(msg.sender, operator);
    }

    /// @inheritdoc IProviderRegistry
    function deregister() external {
        Provider storage record = _activeProvider(msg.sender);
        if (sessionRouter == address(0)) revert SessionRouterNotSet();
        uint256 openSessions = ISessionRouter(sessionRouter).openSessionCount(msg.sender);
        if (openSessions != 0) revert OpenSessionsRemain(msg.sender, openSessions);

        record.active = false;
        record.operator = address(0);

        emit ProviderDeregistered(msg.sender);
    }

    /* GOVERNANCE */

    /// @inheritdoc IProviderRegistry
    function setProviderMinStake(uint256 newProviderMinStake) external onlyRole(DEFAULT_ADMIN_ROLE) {
        providerMinStake = newProviderMinStake;
        emit ProviderMinStakeSet(newProviderMinStake);
    }

    /// @inheritdoc IProviderRegistry
    function setSessionRouter(address newSessionRouter) external onlyRole(DEFAULT_ADMIN_ROLE) {
        if (newSessionRouter == address(0)) revert ZeroAddress();
        sessionRouter = newSessionRouter;
        emit SessionRouterSet(newSessionRouter);
    }

    /* INTERNAL */

    function _activeProvider(address provider) private view returns (Provider storage record) {
        record = _providers[provider];
        if (!record.active) revert ProviderNotRegistered(provider);
    }

    function _checkStake(address provider) private view {
        uint256 stake = staking.stakeOf(provider);
        uint256 minimum = providerMinStake;
        if (stake < minimum) revert StakeBelowMinimum(provider, stake, minimum);
    }

    function _checkMetadata(string calldata endpoint, string calldata metadataURI) private pure {
        if (bytes(endpoint).length == 0 || bytes(endpoint).length > MAX_ENDPOINT_LENGTH) revert InvalidEndpoint();
        if (bytes(metadataURI).length > MAX_METADATA_URI_LENGTH) {
            revert MetadataURITooLong(bytes(metadataURI).length, MAX_METADATA_URI_LENGTH);
        }
    }
}
