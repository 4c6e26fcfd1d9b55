// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {IEscrow} from "./IEscrow.sol";
import {IMarketplace, Prices} from "./IMarketplace.sol";
import {IModelRegistry} from "./IModelRegistry.sol";
import {IProviderRegistry} from "./IProviderRegistry.sol";

/// @notice A provider's (or its operator's) EIP-712 consent to one session with one user.
/// `maxRoyaltyBps` and `maxFeeBps` are the highest model royalty and protocol fee the provider
/// accepts: a royalty or fee raised between the approval and the open cannot cut its share.
struct SessionApproval {
    bytes32 bidId;
    address user;
    uint256 maxDeposit;
    uint64 maxDuration;
    uint64 deadline;
    uint256 nonce;
    uint16 maxRoyaltyBps;
    uint16 maxFeeBps;
}

/// @notice The user's cumulative account of a session's use, EIP-712 signed (plain ECDSA, never
/// ERC-1271) by the session's `sessionKey`. `seq` grows with each receipt; `seq == 0` means
/// "no receipt" and every other field but `sessionId` must then be zero.
struct UsageReceipt {
    bytes32 sessionId;
    uint64 seq;
    uint64 inputTokens;
    uint64 outputTokens;
    uint32 requests;
    uint32 ttftMsAvg;
    uint32 tpsX1000Avg;
}

/// @notice Everything a session agreed at open and never changes. Only its hash (the session id)
/// is stored; callers pass it back (it is in `SessionOpened`) and the router checks the hash.
/// `sessionKey` is the EOA the user named at open: it alone signs the session's receipts and auth
/// tokens, with plain ECDSA, so a receipt valid once stays valid whatever the user's wallet says later.
struct SessionTerms {
    address user;
    address sessionKey;
    address provider;
    bytes32 modelId;
    uint256 nonce;
    uint256 pricePerSecond;
    uint256 pricePerInputToken;
    uint256 pricePerOutputToken;
    address royaltyRecipient;
    uint16 royaltyBps;
    uint16 feeBps;
    uint32 challengeWindow;
    uint96 maxDeposit;
    uint40 openedAt;
    uint40 maxEndsAt;
}

/// @notice The part of a session that changes, packed in one storage slot.
struct SessionState {
    uint96 deposit;
    uint40 endsAt;
    uint40 closedAt;
    SessionStatus status;
    uint64 pendingSeq;
}

enum SessionStatus {
    None,
    Open,
    Closing
}

/// @notice What a settlement paid, as emitted in `SessionSettled`: with the session's terms (its
/// provider, royalty recipient and user), every escrow credit is named by the events alone.
/// `treasury` is the account credited with `feeAmount`: the router's treasury at settlement time.
struct Settlement {
    uint256 cost;
    uint256 providerAmount;
    uint256 royaltyAmount;
    uint256 feeAmount;
    uint256 refund;
    uint64 elapsedSeconds;
    address treasury;
}

/// @title ISessionRouter
/// @notice Opens, tops up, closes, challenges and settles paid inference sessions. The money of
/// every session sits in `escrow`; a settled session is erased (its record is `SessionSettled`).
interface ISessionRouter {
    /// @notice A session opened; `terms` are what every later call on it passes back.
    event SessionOpened(
        bytes32 indexed sessionId,
        address indexed user,
        address indexed provider,
        bytes32 bidId,
        SessionTerms terms,
        uint256 deposit,
        uint40 endsAt
    );
    /// @notice The user added `amount`; `deposit` and `endsAt` are the new totals.
    event SessionToppedUp(
        bytes32 indexed sessionId,
        address indexed user,
        uint256 amount,
        uint256 deposit,
        uint40 endsAt
    );
    /// @notice A close that waits for the challenge window (by the user without the provider's
    /// countersignature, or by a third party after `endsAt`).
    event SessionCloseRequested(
        bytes32 indexed sessionId,
        address indexed closedBy,
        UsageReceipt receipt,
        uint40 closedAt,
        uint40 challengeEndsAt
    );
    /// @notice A session was paid out and erased; the receipt is the one it was priced with.
    event SessionSettled(
        bytes32 indexed sessionId,
        address indexed user,
        address indexed provider,
        Settlement settlement,
        UsageReceipt receipt,
        address closedBy,
        bool challenged
    );
    /// @notice Governance set the protocol fee for sessions opened from now on.
    event ProtocolFeeSet(uint16 protocolFeeBps);
    /// @notice Governance set the longest session.
    event MaxSessionDurationSet(uint64 maxSessionDuration);
    /// @notice Governance set the challenge window for sessions opened from now on.
    event ChallengeWindowSet(uint32 challengeWindow);
    /// @notice Governance set the receiver of fees.
    event TreasurySet(address indexed treasury);

    error ZeroAddress();
    error ZeroDeposit();
    error ZeroSessionKey();
    error DepositAboveApproval(uint256 deposit, uint256 maxDeposit);
    error DepositTooLarge(uint256 deposit);
    error DepositTooSmall(uint256 deposit, uint256 pricePerSecond);
    error ApprovalExpired(uint64 deadline);
    error ApprovalForAnotherUser(address user, address caller);
    error ApprovalNonceUsed(address provider, uint256 nonce);
    error ApprovalNonceTooLarge(uint256 nonce, uint256 maximum);
    error InvalidApprovalSigner(address provider);
    error InvalidDuration();
    error PriceAboveMaximum(uint256 price, uint256 maximum);
    error RoyaltyAboveApproval(uint16 royaltyBps, uint16 maxRoyaltyBps);
    error FeeAboveApproval(uint16 feeBps, uint16 maxFeeBps);
    error BidNotActive(bytes32 bidId);
    error ModelNotActive(bytes32 modelId);
    error SessionNotOpen(bytes32 sessionId);
    error SessionNotClosing(bytes32 sessionId);
    error SessionExpired(bytes32 sessionId, uint40 endsAt);
    error NotSessionUser(bytes32 sessionId, address caller);
    error NotSessionProvider(bytes32 sessionId, address caller);
    error NotAllowedToClose(bytes32 sessionId, address caller);
    error ReceiptSessionMismatch(bytes32 sessionId, bytes32 receiptSessionId);
    error InvalidReceipt();
    error InvalidUserSignature();
    error InvalidProviderSignature();
    error ChallengeNotHigher(uint256 usageCost, uint256 closingUsageCost);
    error ReceiptMismatch();
    error ChallengeWindowOpen(uint40 challengeEndsAt);
    error ChallengeWindowClosed(uint40 challengeEndsAt);
    error ProtocolFeeTooHigh(uint16 protocolFeeBps, uint16 maximum);
    error MaxSessionDurationOutOfBounds(uint64 maxSessionDuration);
    error ChallengeWindowOutOfBounds(uint32 challengeWindow);

    /// @notice The market token.
    function token() external view returns (IERC20);

    /// @notice The escrow this router created and alone pays into.
    function escrow() external view returns (IEscrow);

    /// @notice Where bids are read.
    function marketplace() external view returns (IMarketplace);

    /// @notice Where providers are checked and operators looked up.
    function providerRegistry() external view returns (IProviderRegistry);

    /// @notice Where models are checked and royalties read.
    function modelRegistry() external view returns (IModelRegistry);

    /// @notice Share of each session's cost paid to the treasury, in basis points.
    function protocolFeeBps() external view returns (uint16);

    /// @notice Longest a session may run, in seconds.
    function maxSessionDuration() external view returns (uint64);

    /// @notice Seconds a provider has to challenge a close it did not sign.
    function challengeWindow() external view returns (uint32);

    /// @notice Receiver of protocol fees.
    function treasury() external view returns (address);

    /// @notice The EIP-712 domain separator of approvals, receipts and session auth.
    function domainSeparator() external view returns (bytes32);

    /// @notice The id of a session: keccak256 of its ABI-encoded terms.
    function sessionIdOf(SessionTerms calldata terms) external pure returns (bytes32);

    /// @notice The mutable state of a session (`status == None` once settled or if it never existed).
    function getSessionState(bytes32 sessionId) external view returns (SessionState memory);

    /// @notice Whether the provider's approval `nonce` can never be used: used, more than 127 below the
    /// highest nonce the provider has used (approvals are expected to carry rising nonces), or above
    /// 2^64 - 1. A nonce more than `MAX_NONCE_STEP` above the highest is refused for now but not spent.
    function isApprovalNonceUsed(address provider, uint256 nonce) external view returns (bool);

    /// @notice The provider's next fresh approval nonce: 0 if it has used none, else its highest used
    /// nonce + 1. An agent that lost its records resumes from here.
    function nextApprovalNonce(address provider) external view returns (uint256);

    /// @notice Sessions of `provider` not yet settled.
    function openSessionCount(address provider) external view returns (uint256);

    /// @notice Opens a session on `approval.bidId` for the caller, pulling `deposit` into escrow.
    /// @dev Reverts `TokenTransferMismatch` (TokenTransfer.sol) if the escrow's balance did not grow by
    /// exactly `deposit`: the market token must be a plain ERC-20 (no fee on transfer).
    /// @param approval Signed by the bid's provider or its operator; binds the caller as user, and
    /// caps the model's royalty (as `ModelRegistry.royaltyOf` gives it now) and the protocol fee.
    /// @param approvalSignature The EIP-712 signature of `approval`.
    /// @param deposit Tokens to lock, at most `approval.maxDeposit`.
    /// @param maxPrices The prices the user was shown; the open reverts if the bid costs more now.
    /// @param sessionKey The EOA that signs this session's receipts and auth tokens (plain ECDSA, never
    /// ERC-1271): the user itself for an EOA user, a key the client keeps otherwise. Not zero.
    /// @return sessionId The new session's id.
    /// @return terms The session's terms, needed to close it.
    function openSession(
        SessionApproval calldata approval,
        bytes calldata approvalSignature,
        uint256 deposit,
        Prices calldata maxPrices,
        address sessionKey
    ) external returns (bytes32 sessionId, SessionTerms memory terms);

    /// @notice `openSession` with an ERC-2612 permit for `deposit`, so a fresh wallet opens in one
    /// transaction. A permit that fails (e.g. front-run) is ignored when the allowance suffices.
    function openSessionWithPermit(
        SessionApproval calldata approval,
        bytes calldata approvalSignature,
        uint256 deposit,
        Prices calldata maxPrices,
        address sessionKey,
        uint256 permitDeadline,
        uint8 v,
        bytes32 r,
        bytes32 s
    ) external returns (bytes32 sessionId, SessionTerms memory terms);

    /// @notice Adds `amount` to an open, unexpired session of the caller and extends `endsAt`
    /// (never past `terms.maxEndsAt`; the deposit never above `terms.maxDeposit`).
    /// @dev Reverts `TokenTransferMismatch` if the escrow's balance did not grow by exactly `amount`.
    function topUp(SessionTerms calldata terms, uint256 amount) external;

    /// @notice Closes a session with the latest receipt (`seq == 0`: none). The provider or its
    /// operator settles at once; so does the user when `providerSignature` countersigns the
    /// receipt. Otherwise the user (any time) or anyone (after `endsAt`) starts the challenge window.
    /// @param userSignature The receipt's ECDSA signature by `terms.sessionKey` (empty when `seq == 0`).
    /// @param providerSignature The provider's or operator's countersignature of the receipt (ECDSA or
    /// ERC-1271), or empty.
    function closeSession(
        SessionTerms calldata terms,
        UsageReceipt calldata receipt,
        bytes calldata userSignature,
        bytes calldata providerSignature
    ) external;

    /// @notice Provider or operator, within the challenge window: settles a closing session at once
    /// with a user-signed receipt whose tokens cost more than those of the receipt it was closed with.
    /// @param closingReceipt The receipt the close carried (as emitted in `SessionCloseRequested`).
    /// @param receipt The challenger's receipt; it wins only if its token cost is strictly higher.
    /// @param userSignature The receipt's ECDSA signature by `terms.sessionKey`.
    function challenge(
        SessionTerms calldata terms,
        UsageReceipt calldata closingReceipt,
        UsageReceipt calldata receipt,
        bytes calldata userSignature
    ) external;

    /// @notice Anyone, after the challenge window: settles a closing session with the receipt it
    /// was closed with (as emitted in `SessionCloseRequested`).
    function finalize(SessionTerms calldata terms, UsageReceipt calldata receipt) external;

    /// @notice Governance: sets the protocol fee (at most `MAX_PROTOCOL_FEE_BPS`); applies to sessions opened later.
    function setProtocolFeeBps(uint16 newProtocolFeeBps) external;

    /// @notice Governance: sets the longest session (1 hour to 365 days).
    function setMaxSessionDuration(uint64 newMaxSessionDuration) external;

    /// @notice Governance: sets the challenge window (1 minute to 7 days); applies to sessions opened later.
    function setChallengeWindow(uint32 newChallengeWindow) external;

    /// @notice Governance: sets the receiver of protocol fees.
    function setTreasury(address newTreasury) external;
}
