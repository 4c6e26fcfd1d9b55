// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {AccessControl} from "@openzeppelin/contracts/access/AccessControl.sol";
import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {IERC20Permit} from "@openzeppelin/contracts/token/ERC20/extensions/IERC20Permit.sol";
import {SafeERC20} from "@openzeppelin/contracts/token/ERC20/utils/SafeERC20.sol";
import {ECDSA} from "@openzeppelin/contracts/utils/cryptography/ECDSA.sol";
import {EIP712} from "@openzeppelin/contracts/utils/cryptography/EIP712.sol";
import {SignatureChecker} from "@openzeppelin/contracts/utils/cryptography/SignatureChecker.sol";
import {ReentrancyGuardTransient} from "@openzeppelin/contracts/utils/ReentrancyGuardTransient.sol";
import {Escrow} from "./Escrow.sol";
import {IEscrow} from "./interfaces/IEscrow.sol";
import {IMarketplace, Prices} from "./interfaces/IMarketplace.sol";
import {IModelRegistry} from "./interfaces/IModelRegistry.sol";
import {IProviderRegistry} from "./interfaces/IProviderRegistry.sol";
import {
    ISessionRouter,
    SessionApproval,
    SessionState,
    SessionStatus,
    SessionTerms,
    Settlement,
    UsageReceipt
} from "./interfaces/ISessionRouter.sol";
import {BidId} from "./libraries/BidId.sol";
import {SessionLib} from "./libraries/SessionLib.sol";
import {TokenTransfer} from "./libraries/TokenTransfer.sol";

/// @title SessionRouter
/// @notice See {ISessionRouter}. A session's money: `openSession` pulls the deposit into `escrow`;
/// `closeSession`, `challenge` or `finalize` price the use with the user's receipt and `_settle`
/// hands the escrow the split (provider, model royalty, protocol fee, refund); `Escrow.claim` pays out.
contract SessionRouter is ISessionRouter, EIP712, AccessControl, ReentrancyGuardTransient {
    using SafeERC20 for IERC20;

    /// @notice The highest protocol fee governance may set (10%).
    uint16 public constant MAX_PROTOCOL_FEE_BPS = 1_000;
    /// @notice The shortest `maxSessionDuration` governance may set.
    uint64 public constant MIN_MAX_SESSION_DURATION = 1 hours;
    /// @notice The longest `maxSessionDuration` governance may set.
    uint64 public constant MAX_MAX_SESSION_DURATION = 365 days;
    /// @notice The shortest challenge window governance may set.
    uint32 public constant MIN_CHALLENGE_WINDOW = 1 minutes;
    /// @notice The longest challenge window governance may set.
    uint32 public constant MAX_CHALLENGE_WINDOW = 7 days;
    /// @notice How far below a provider's highest used approval nonce a nonce may still be used.
    uint256 public constant NONCE_WINDOW = 128;
    /// @notice How far above a provider's highest used approval nonce (or above 0, before its first)
    /// a nonce may be: one approval cannot move the window more, so reaching the last nonce,
    /// 2^64 - 1, takes at least 2^32 opens.
    uint256 public constant MAX_NONCE_STEP = 2 ** 32;

    /// @dev The parameters `openSession` reads, packed into one slot.
    struct OpenParams {
        uint16 protocolFeeBps;
        uint32 challengeWindow;
        uint64 maxSessionDuration;
    }

    /// @dev A provider's open sessions and spent approval nonces, in one slot so that an open writes
    /// it once (5k gas) rather than two slots. The nonces are a sliding window: bit `i` of
    /// `recentNonces` is nonce `highestNonce - i`; nonces more than 127 below the highest are spent.
    /// Bit 0 stays set once any nonce is used, so the slot never returns to zero (no 22k rewrite).
    struct ProviderSessions {
        uint64 openSessions;
        uint64 highestNonce;
        uint128 recentNonces;
    }

    /// @dev Constructor arguments, grouped to keep the stack shallow.
    struct Deployment {
        IERC20 token;
        IMarketplace marketplace;
        IProviderRegistry providerRegistry;
        IModelRegistry modelRegistry;
        address governance;
        address treasury;
        uint16 protocolFeeBps;
        uint64 maxSessionDuration;
        uint32 challengeWindow;
    }

    /* STORAGE */

    /// @inheritdoc ISessionRouter
    IERC20 public immutable token;
    /// @inheritdoc ISessionRouter
    IEscrow public immutable escrow;
    /// @inheritdoc ISessionRouter
    IMarketplace public immutable marketplace;
    /// @inheritdoc ISessionRouter
    IProviderRegistry public immutable providerRegistry;
    /// @inheritdoc ISessionRouter
    IModelRegistry public immutable modelRegistry;
    /// @inheritdoc ISessionRouter
    address public treasury;

    OpenParams private _params;
    mapping(bytes32 sessionId => SessionState) private _sessions;
    /// @dev Hash of the receipt a closing session was closed with; `finalize` is handed it back.
    mapping(bytes32 sessionId => bytes32) private _pendingReceiptHash;
    mapping(address provider => ProviderSessions) private _providerSessions;

    /* CONSTRUCTOR */

    constructor(Deployment memory deployment) EIP712("InferenceMarket", "1") {
        if (
            address(deployment.token) == address(0) ||
            address(deployment.marketplace) == address(0) ||
            address(deployment.providerRegistry) == address(0) ||
            address(deployment.modelRegistry) == address(0) ||
            deployment.governance == address(0)
        ) revert ZeroAddress();
        token = deployment.token;
        marketplace = deployment.marketplace;
        providerRegistry = deployment.providerRegistry;
        modelRegistry = deployment.modelRegistry;
        escrow = new Escrow(deployment.token);
        _grantRole(DEFAULT_ADMIN_ROLE, deployment.governance);
        _setTreasury(deployment.treasury);
        _setProtocolFeeBps(deployment.protocolFeeBps);
        _setMaxSessionDuration(deployment.maxSessionDuration);
        _setChallengeWindow(deployment.challengeWindow);
    }

    /* VIEWS */

    /// @inheritdoc ISessionRouter
    function protocolFeeBps() external view returns (uint16) {
        return _params.protocolFeeBps;
    }

    /// @inheritdoc ISessionRouter
    function maxSessionDuration() external view returns (uint64) {
        return _params.maxSessionDuration;
    }

    /// @inheritdoc ISessionRouter
    function challengeWindow() external view returns (uint32) {
        return _params.challengeWindow;
    }

    /// @inheritdoc ISessionRouter
    function domainSeparator() external view returns (bytes32) {
        return _domainSeparatorV4();
    }

    /// @inheritdoc ISessionRouter
    function sessionIdOf(SessionTerms calldata terms) external pure returns (bytes32) {
        return SessionLib.id(terms);
    }

    /// @inheritdoc ISessionRouter
    function getSessionState(bytes32 sessionId) external view returns (SessionState memory) {
        return _sessions[sessionId];
    }

    /// @inheritdoc ISessionRouter
    function isApprovalNonceUsed(address provider, uint256 nonce) external view returns (bool) {
        if (nonce > type(uint64).max) return true;
        ProviderSessions memory sessions = _providerSessions[provider];
        if (sessions.recentNonces == 0 || nonce > sessions.highestNonce) return false;
        uint256 age = sessions.highestNonce - nonce;
        return age >= NONCE_WINDOW || sessions.recentNonces & (1 << age) != 0;
    }

    /// @inheritdoc ISessionRouter
    function nextApprovalNonce(address provider) external view returns (uint256) {
        ProviderSessions memory sessions = _providerSessions[provider];
        return sessions.recentNonces == 0 ? 0 : uint256(sessions.highestNonce) + 1;
    }

    /// @inheritdoc ISessionRouter
    function openSessionCount(address provider) external view returns (uint256) {
        return _providerSessions[provider].openSessions;
    }

    /* OPEN */

    /// @inheritdoc ISessionRouter
    function openSession(
        SessionApproval calldata approval,
        bytes calldata approvalSignature,
        uint256 deposit,
        Prices calldata maxPrices,
        address sessionKey
    ) external nonReentrant returns (bytes32, SessionTerms memory) {
        return _open(approval, approvalSignature, deposit, maxPrices, sessionKey);
    }

    /// @inheritdoc ISessionRouter
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
    ) external nonReentrant returns (bytes32, SessionTerms memory) {
        // Anyone can submit a seen permit first; then the allowance is already there and we go on.
        // solhint-disable-next-line no-empty-blocks
        try IERC20Permit(address(token)).permit(msg.sender, address(this), deposit, permitDeadline, v, r, s) {} catch {}
        return _open(approval, approvalSignature, deposit, maxPrices, sessionKey);
    }

    /// @inheritdoc ISessionRouter
    function topUp(SessionTerms calldata terms, uint256 amount) external nonReentrant {
        bytes32 sessionId = SessionLib.id(terms);
        SessionState storage state = _sessions[sessionId];
        if (state.status != SessionStatus.Open) revert SessionNotOpen(sessionId);
        if (msg.sender != terms.user) revert NotSessionUser(sessionId, msg.sender);
        if (block.timestamp >= state.endsAt) revert SessionExpired(sessionId, state.endsAt);
        if (amount == 0) revert ZeroDeposit();
        uint256 deposit = state.deposit + amount;
        if (deposit > terms.maxDeposit) revert DepositAboveApproval(deposit, terms.maxDeposit);

        uint40 endsAt = SessionLib.endsAt(terms, deposit);
        // Safe cast: deposit <= terms.maxDeposit, a uint96.
        state.deposit = uint96(deposit);
        state.endsAt = endsAt;

        emit SessionToppedUp(sessionId, msg.sender, amount, deposit, endsAt);

        TokenTransfer.pullExact(token, msg.sender, address(escrow), amount);
    }

    /* CLOSE */

    /// @inheritdoc ISessionRouter
    function closeSession(
        SessionTerms calldata terms,
        UsageReceipt calldata receipt,
        bytes calldata userSignature,
        bytes calldata providerSignature
    ) external nonReentrant {
        bytes32 sessionId = SessionLib.id(terms);
        SessionState memory state = _sessions[sessionId];
        if (state.status != SessionStatus.Open) revert SessionNotOpen(sessionId);
        bytes32 receiptDigest = _checkReceipt(sessionId, terms.sessionKey, receipt, userSignature);

        if (msg.sender == terms.user) {
            if (providerSignature.length == 0) return _requestClose(sessionId, terms, receipt);
            if (!_isSignedByProvider(receiptDigest, providerSignature, terms.provider)) {
                revert InvalidProviderSignature();
            }
        } else if (msg.sender != terms.provider && msg.sender != providerRegistry.operatorOf(terms.provider)) {
            if (block.timestamp < state.endsAt) revert NotAllowedToClose(sessionId, msg.sender);
            return _requestClose(sessionId, terms, receipt);
        }
        _settle(sessionId, terms, state, receipt, uint40(block.timestamp), false);
    }

    /// @inheritdoc ISessionRouter
    function challenge(
        SessionTerms calldata terms,
        UsageReceipt calldata closingReceipt,
        UsageReceipt calldata receipt,
        bytes calldata userSignature
    ) external nonReentrant {
        bytes32 sessionId = SessionLib.id(terms);
        SessionState memory state = _sessions[sessionId];
        if (state.status != SessionStatus.Closing) revert SessionNotClosing(sessionId);
        if (msg.sender != terms.provider && msg.sender != providerRegistry.operatorOf(terms.provider)) {
            revert NotSessionProvider(sessionId, msg.sender);
        }
        uint40 challengeEndsAt = state.closedAt + terms.challengeWindow;
        if (block.timestamp > challengeEndsAt) revert ChallengeWindowClosed(challengeEndsAt);
        _checkPendingReceipt(sessionId, closingReceipt);
        _checkReceipt(sessionId, terms.sessionKey, receipt, userSignature);
        // The receipt that charges more wins, whatever its `seq`: the user signed both, and the user
        // chooses `seq`, so ordering by it would let a user close with a high-seq, low-usage receipt.
        uint256 usageCost = SessionLib.usageCost(terms, receipt);
        uint256 closingUsageCost = SessionLib.usageCost(terms, closingReceipt);
        if (usageCost <= closingUsageCost) revert ChallengeNotHigher(usageCost, closingUsageCost);

        delete _pendingReceiptHash[sessionId];
        _settle(sessionId, terms, state, receipt, state.closedAt, true);
    }

    /// @inheritdoc ISessionRouter
    function finalize(SessionTerms calldata terms, UsageReceipt calldata receipt) external nonReentrant {
        bytes32 sessionId = SessionLib.id(terms);
        SessionState memory state = _sessions[sessionId];
        if (state.status != SessionStatus.Closing) revert SessionNotClosing(sessionId);
        uint40 challengeEndsAt = state.closedAt + terms.challengeWindow;
        if (block.timestamp <= challengeEndsAt) revert ChallengeWindowOpen(challengeEndsAt);
        _checkPendingReceipt(sessionId, receipt);

        delete _pendingReceiptHash[sessionId];
        _settle(sessionId, terms, state, receipt, state.closedAt, false);
    }

    /* GOVERNANCE */

    /// @inheritdoc ISessionRouter
    function setProtocolFeeBps(uint16 newProtocolFeeBps) external onlyRole(DEFAULT_ADMIN_ROLE) {
        _setProtocolFeeBps(newProtocolFeeBps);
    }

    /// @inheritdoc ISessionRouter
    function setMaxSessionDuration(uint64 newMaxSessionDuration) external onlyRole(DEFAULT_ADMIN_ROLE) {
        _setMaxSessionDuration(newMaxSessionDuration);
    }

    /// @inheritdoc ISessionRouter
    function setChallengeWindow(uint32 newChallengeWindow) external onlyRole(DEFAULT_ADMIN_ROLE) {
        _setChallengeWindow(newChallengeWindow);
    }

    /// @inheritdoc ISessionRouter
    function setTreasury(address newTreasury) external onlyRole(DEFAULT_ADMIN_ROLE) {
        _setTreasury(newTreasury);
    }

    /* INTERNAL: OPEN */

    function _open(
        SessionApproval calldata approval,
        bytes calldata approvalSignature,
        uint256 deposit,
        Prices calldata maxPrices,
        address sessionKey
    ) private returns (bytes32 sessionId, SessionTerms memory terms) {
        if (approval.user != msg.sender) revert ApprovalForAnotherUser(approval.user, msg.sender);
        if (sessionKey == address(0)) revert ZeroSessionKey();
        if (block.timestamp > approval.deadline) revert ApprovalExpired(approval.deadline);
        if (approval.maxDuration == 0) revert InvalidDuration();
        if (deposit == 0) revert ZeroDeposit();
        if (deposit > approval.maxDeposit) revert DepositAboveApproval(deposit, approval.maxDeposit);
        if (deposit > type(uint96).max) revert DepositTooLarge(deposit);

        terms = _agreeTerms(approval, approvalSignature, maxPrices);
        terms.sessionKey = sessionKey;
        uint40 endsAt = SessionLib.endsAt(terms, deposit);
        if (endsAt == terms.openedAt) revert DepositTooSmall(deposit, terms.pricePerSecond);

        sessionId = SessionLib.id(terms);
        // Safe cast: deposit <= type(uint96).max, checked above.
        _sessions[sessionId] = SessionState({
            deposit: uint96(deposit),
            endsAt: endsAt,
            closedAt: 0,
            status: SessionStatus.Open,
            pendingSeq: 0
        });

        emit SessionOpened(sessionId, msg.sender, terms.provider, approval.bidId, terms, deposit, endsAt);

        TokenTransfer.pullExact(token, msg.sender, address(escrow), deposit);
    }

    /// @dev Checks the bid, model, provider, signature and nonce, and fixes the session's terms.
    function _agreeTerms(
        SessionApproval calldata approval,
        bytes calldata approvalSignature,
        Prices calldata maxPrices
    ) private returns (SessionTerms memory terms) {
        IMarketplace.Bid memory bid = marketplace.getBid(approval.bidId);
        if (!bid.active) revert BidNotActive(approval.bidId);
        _checkPrice(bid.pricePerSecond, maxPrices.perSecond);
        _checkPrice(bid.pricePerInputToken, maxPrices.perInputToken);
        _checkPrice(bid.pricePerOutputToken, maxPrices.perOutputToken);
        terms.user = msg.sender;
        terms.provider = BidId.provider(approval.bidId);
        terms.modelId = bid.modelId;
        terms.nonce = approval.nonce;
        terms.pricePerSecond = bid.pricePerSecond;
        terms.pricePerInputToken = bid.pricePerInputToken;
        terms.pricePerOutputToken = bid.pricePerOutputToken;

        bool modelActive;
        (modelActive, terms.royaltyRecipient, terms.royaltyBps) = modelRegistry.royaltyOf(bid.modelId);
        if (!modelActive) revert ModelNotActive(bid.modelId);
        if (terms.royaltyBps > approval.maxRoyaltyBps) {
            revert RoyaltyAboveApproval(terms.royaltyBps, approval.maxRoyaltyBps);
        }

        // Reverts unless the provider is registered and staked at least the minimum.
        address operator = providerRegistry.activeOperatorOf(terms.provider);
        bytes32 digest = _hashTypedDataV4(SessionLib.hashApproval(approval));
        if (!_isSignedBy(digest, approvalSignature, terms.provider, operator)) {
            revert InvalidApprovalSigner(terms.provider);
        }
        _openWithNonce(terms.provider, approval.nonce);

        OpenParams memory params = _params;
        if (params.protocolFeeBps > approval.maxFeeBps)
            revert FeeAboveApproval(params.protocolFeeBps, approval.maxFeeBps);
        uint64 duration =
            approval.maxDuration < params.maxSessionDuration ? approval.maxDuration : params.maxSessionDuration;
        terms.feeBps = params.protocolFeeBps;
        terms.challengeWindow = params.challengeWindow;
        // Safe cast: clamped to uint96; a deposit above it is rejected by `_open`.
        terms.maxDeposit = approval.maxDeposit > type(uint96).max ? type(uint96).max : uint96(approval.maxDeposit);
        terms.openedAt = uint40(block.timestamp);
        // Safe cast: duration <= MAX_MAX_SESSION_DURATION.
        terms.maxEndsAt = uint40(block.timestamp + duration);
    }

    function _checkPrice(uint256 price, uint256 maximum) private pure {
        if (price > maximum) revert PriceAboveMaximum(price, maximum);
    }

    /// @dev Spends the approval nonce and counts the session open, in one storage write. A provider that
    /// has used no nonce has `highestNonce == 0`, so its first nonce is bounded by `MAX_NONCE_STEP` too.
    function _openWithNonce(address provider, uint256 nonce) private {
        ProviderSessions memory sessions = _providerSessions[provider];
        uint256 maximum = uint256(sessions.highestNonce) + MAX_NONCE_STEP;
        if (maximum > type(uint64).max) maximum = type(uint64).max;
        if (nonce > maximum) revert ApprovalNonceTooLarge(nonce, maximum);
        if (sessions.recentNonces == 0 || nonce > sessions.highestNonce) {
            uint256 shift = nonce - sessions.highestNonce;
            // Safe cast: the window keeps its low 128 bits; older nonces fall out of it, spent.
            sessions.recentNonces =
                sessions.recentNonces == 0 || shift >= NONCE_WINDOW
                    ? 1
                    : uint128((uint256(sessions.recentNonces) << shift) | 1);
            // Safe cast: nonce <= maximum <= type(uint64).max, checked above.
            sessions.highestNonce = uint64(nonce);
        } else {
            uint256 age = sessions.highestNonce - nonce;
            if (age >= NONCE_WINDOW || sessions.recentNonces & (1 << age) != 0) {
                revert ApprovalNonceUsed(provider, nonce);
            }
            // Safe cast: age < 128.
            sessions.recentNonces |= uint128(1 << age);
        }
        ++sessions.openSessions;
        _providerSessions[provider] = sessions;
    }

    /* INTERNAL: CLOSE AND SETTLE */

    /// @dev `seq == 0` is "no receipt": it prices time only and needs no user signature. The digest
    /// is returned either way, since the provider may countersign an empty receipt too. A receipt is
    /// plain ECDSA by the session key, never ERC-1271: a wallet's answer is state its owner controls,
    /// and a receipt that was valid when the provider served must stay valid when it settles.
    function _checkReceipt(
        bytes32 sessionId,
        address sessionKey,
        UsageReceipt calldata receipt,
        bytes calldata signature
    ) private view returns (bytes32 digest) {
        if (receipt.sessionId != sessionId) revert ReceiptSessionMismatch(sessionId, receipt.sessionId);
        digest = _hashTypedDataV4(SessionLib.hashReceipt(receipt));
        if (receipt.seq == 0) {
            if (
                receipt.inputTokens != 0 ||
                receipt.outputTokens != 0 ||
                receipt.requests != 0 ||
                receipt.ttftMsAvg != 0 ||
                receipt.tpsX1000Avg != 0
            ) revert InvalidReceipt();
        } else {
            (address signer, ECDSA.RecoverError error, ) = ECDSA.tryRecoverCalldata(digest, signature);
            if (error != ECDSA.RecoverError.NoError || signer != sessionKey) revert InvalidUserSignature();
        }
    }

    /// @dev A closing session stores only the hash of the receipt it was closed with.
    function _checkPendingReceipt(bytes32 sessionId, UsageReceipt calldata receipt) private view {
        if (keccak256(abi.encode(receipt)) != _pendingReceiptHash[sessionId]) revert ReceiptMismatch();
    }

    function _requestClose(bytes32 sessionId, SessionTerms calldata terms, UsageReceipt calldata receipt) private {
        SessionState storage state = _sessions[sessionId];
        uint40 closedAt = uint40(block.timestamp);
        state.status = SessionStatus.Closing;
        state.closedAt = closedAt;
        state.pendingSeq = receipt.seq;
        _pendingReceiptHash[sessionId] = keccak256(abi.encode(receipt));

        emit SessionCloseRequested(sessionId, msg.sender, receipt, closedAt, closedAt + terms.challengeWindow);
    }

    function _settle(
        bytes32 sessionId,
        SessionTerms calldata terms,
        SessionState memory state,
        UsageReceipt calldata receipt,
        uint40 closedAt,
        bool challenged
    ) private {
        uint40 end = closedAt < state.endsAt ? closedAt : state.endsAt;
        Settlement memory settlement;
        settlement.elapsedSeconds = end - terms.openedAt;
        settlement.cost = SessionLib.cost(terms, settlement.elapsedSeconds, receipt, state.deposit);
        (settlement.providerAmount, settlement.royaltyAmount, settlement.feeAmount) = SessionLib.split(
            terms,
            settlement.cost
        );
        settlement.refund = state.deposit - settlement.cost;
        settlement.treasury = treasury;

        delete _sessions[sessionId];
        --_providerSessions[terms.provider].openSessions;

        emit SessionSettled(sessionId, terms.user, terms.provider, settlement, receipt, msg.sender, challenged);

        escrow.settle(
            IEscrow.Payout({
                provider: terms.provider,
                providerAmount: settlement.providerAmount,
                royaltyRecipient: terms.royaltyRecipient,
                royaltyAmount: settlement.royaltyAmount,
                treasury: settlement.treasury,
                feeAmount: settlement.feeAmount,
                user: terms.user,
                refund: settlement.refund
            })
        );
    }

    /* INTERNAL: SIGNATURES */

    /// @dev One ecrecover serves both a provider and its operator; only when it does not match are
    /// the signers asked as ERC-1271 contract wallets (which saves the EOA path an EXTCODESIZE).
    function _isSignedBy(
        bytes32 digest,
        bytes calldata signature,
        address provider,
        address operator
    ) private view returns (bool) {
        (address signer, ECDSA.RecoverError error, ) = ECDSA.tryRecoverCalldata(digest, signature);
        if (
            error == ECDSA.RecoverError.NoError &&
            (signer == provider || (signer == operator && operator != address(0)))
        ) {
            return true;
        }
        return
            SignatureChecker.isValidERC1271SignatureNowCalldata(provider, digest, signature) ||
            (operator != address(0) &&
                SignatureChecker.isValidERC1271SignatureNowCalldata(operator, digest, signature));
    }

    function _isSignedByProvider(
        bytes32 digest,
        bytes calldata signature,
        address provider
    ) private view returns (bool) {
        return _isSignedBy(digest, signature, provider, providerRegistry.operatorOf(provider));
    }

    /* INTERNAL: GOVERNANCE */

    function _setProtocolFeeBps(uint16 newProtocolFeeBps) private {
        if (newProtocolFeeBps > MAX_PROTOCOL_FEE_BPS)
            revert ProtocolFeeTooHigh(newProtocolFeeBps, MAX_PROTOCOL_FEE_BPS);
        _params.protocolFeeBps = newProtocolFeeBps;
        emit ProtocolFeeSet(newProtocolFeeBps);
    }

    function _setMaxSessionDuration(uint64 newMaxSessionDuration) private {
        if (newMaxSessionDuration < MIN_MAX_SESSION_DURATION || newMaxSessionDuration > MAX_MAX_SESSION_DURATION) {
            revert MaxSessionDurationOutOfBounds(newMaxSessionDuration);
        }
        _params.maxSessionDuration = newMaxSessionDuration;
        emit MaxSessionDurationSet(newMaxSessionDuration);
    }

    function _setChallengeWindow(uint32 newChallengeWindow) private {
        if (newChallengeWindow < MIN_CHALLENGE_WINDOW || newChallengeWindow > MAX_CHALLENGE_WINDOW) {
            revert ChallengeWindowOutOfBounds(newChallengeWindow);
        }
        _params.challengeWindow = newChallengeWindow;
        emit ChallengeWindowSet(newChallengeWindow);
    }

    function _setTreasury(address newTreasury) private {
        if (newTreasury == address(0)) revert ZeroAddress();
        treasury = newTreasury;
        emit TreasurySet(newTreasury);
    }
}
