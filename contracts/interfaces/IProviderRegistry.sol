// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {IStaking} from "./IStaking.sol";

/// @title IProviderRegistry
/// @notice The providers of the market: who they are, where their agent listens, and which hot key
/// (the operator) may sign session approvals and close sessions for them.
interface IProviderRegistry {
    /// @notice A provider's on-chain record. The metadata URI lives only in events.
    struct Provider {
        address operator;
        uint40 registeredAt;
        bool active;
        string endpoint;
    }

    /// @notice A provider registered (or came back) with its operator, endpoint and metadata.
    event ProviderRegistered(address indexed provider, address indexed operator, string endpoint, string metadataURI);
    /// @notice A provider changed its endpoint and metadata.
    event ProviderUpdated(address indexed provider, string endpoint, string metadataURI);
    /// @notice A provider changed its operator key (zero: none).
    event OperatorSet(address indexed provider, address indexed operator);
    /// @notice A provider left the market; its operator key is cleared.
    event ProviderDeregistered(address indexed provider);
    /// @notice Governance set the minimum provider stake.
    event ProviderMinStakeSet(uint256 providerMinStake);
    /// @notice Governance set the session router `deregister` consults.
    event SessionRouterSet(address indexed sessionRouter);

    error ZeroAddress();
    error ProviderAlreadyRegistered(address provider);
    error ProviderNotRegistered(address provider);
    error StakeBelowMinimum(address provider, uint256 stake, uint256 minimum);
    error InvalidEndpoint();
    error MetadataURITooLong(uint256 length, uint256 maximum);
    error OpenSessionsRemain(address provider, uint256 openSessions);
    error SessionRouterNotSet();

    /// @notice The staking contract whose `stakeOf` gates registration and sessions.
    function staking() external view returns (IStaking);

    /// @notice Minimum stake a provider must hold to register and to open sessions.
    function providerMinStake() external view returns (uint256);

    /// @notice The session router asked how many sessions a provider has open before it leaves.
    function sessionRouter() external view returns (address);

    /// @notice The record of `provider` (all zero if it never registered).
    function getProvider(address provider) external view returns (Provider memory);

    /// @notice Whether `provider` is registered and active.
    function isActive(address provider) external view returns (bool);

    /// @notice The operator key of `provider` (zero if none or not registered).
    function operatorOf(address provider) external view returns (address);

    /// @notice The operator of a provider that may serve sessions now: active and staked at least
    /// `providerMinStake`. Reverts `ProviderNotRegistered` or `StakeBelowMinimum` otherwise.
    function activeOperatorOf(address provider) external view returns (address operator);

    /// @notice Registers the caller as a provider (or re-registers one that left).
    /// @param endpoint The agent's base URL (1 to 256 bytes).
    /// @param metadataURI Free-form metadata (at most 2048 bytes), emitted only.
    /// @param operator Hot key that may sign approvals and close sessions; zero for none.
    function register(string calldata endpoint, string calldata metadataURI, address operator) external;

    /// @notice Changes the caller's endpoint and metadata.
    function update(string calldata endpoint, string calldata metadataURI) external;

    /// @notice Changes the caller's operator key; zero removes it.
    function setOperator(address operator) external;

    /// @notice Leaves the market. Reverts `OpenSessionsRemain` while any session of the caller is open.
    function deregister() external;

    /// @notice Governance: sets the minimum provider stake.
    function setProviderMinStake(uint256 newProviderMinStake) external;

    /// @notice Governance: sets the session router consulted by `deregister`.
    function setSessionRouter(address newSessionRouter) external;
}
