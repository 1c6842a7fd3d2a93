// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {Initializable} from "@openzeppelin/contracts-upgradeable/proxy/utils/Initializable.sol";
import {UUPSUpgradeable} from "@openzeppelin/contracts-upgradeable/proxy/utils/UUPSUpgradeable.sol";
import {
    Ownable2StepUpgradeable
} from "@openzeppelin/contracts-upgradeable/access/Ownable2StepUpgradeable.sol";
import {Clones} from "@openzeppelin/contracts/proxy/Clones.sol";
import {ECDSA} from "@openzeppelin/contracts/utils/cryptography/ECDSA.sol";

import {AppAuth} from "./AppAuth.sol";
import {AppKeyLib} from "./AppKeyLib.sol";
import {BootInfo, TcbVersion, SnpLib} from "./SnpTypes.sol";

/// @title KmsRegistry
/// @notice Governance of one snpkms deployment: which OS images apps may boot, which KMS
///         images/chips may serve keys, minimum TCB per SEV-SNP product, the KMS root
///         signing key, and the registry of apps (each an {AppAuth} clone).
/// @dev Deployed behind an ERC1967Proxy (UUPS). State lives in ERC-7201 namespaced storage.
contract KmsRegistry is Initializable, UUPSUpgradeable, Ownable2StepUpgradeable {
    // ---------------------------------------------------------------- errors
    error UpgradesAreDisabled();
    error AlreadyPresent();
    error NotPresent();
    error BadMeasurementLength(uint256 length);
    error BadChipIdLength(uint256 length);
    error UnknownProduct(uint8 product);
    /// @dev fmc is Turin-only: the minimum's fmc must be 0 for Milan (0) and Genoa (1).
    error FmcNotSupported(uint8 product);
    error BadThreshold(uint256 threshold, uint256 nodes);
    error BadPointEncoding(uint256 length);
    error NodeIndicesNotIncreasing(uint16 index);
    error BadNodeSigner(address signer);
    error GroupKeyChanged();
    error TooManyNodes(uint256 nodes);

    // ---------------------------------------------------------------- events
    event UpgradesDisabled();
    event KmsInfoSet(address indexed rootSigningAddress, bytes tlsPublicKey, uint32 epoch);
    event KeyEpochBumped(uint32 epoch);
    event OsImageAdded(bytes32 indexed key, bytes measurement);
    event OsImageRemoved(bytes32 indexed key, bytes measurement);
    event KmsMeasurementAdded(bytes32 indexed key, bytes measurement);
    event KmsMeasurementRemoved(bytes32 indexed key, bytes measurement);
    event KmsChipAdded(bytes32 indexed deviceId, bytes chipId);
    event KmsChipRemoved(bytes32 indexed deviceId, bytes chipId);
    /// @notice The minimum TCB for `product` was set. A product whose minimum was never set is
    ///         refused ("no minimum tcb for product"); setting an all-zero minimum is how
    ///         governance explicitly accepts any TCB of a product.
    event MinTcbSet(uint8 indexed product, TcbVersion tcb);
    /// @notice Whether any chip may run the KMS, whatever the chip list holds, was set.
    event AnyKmsChipAllowedSet(bool allowed);
    /// @notice A KMS security-configuration digest (`snpkms node config-digest`) was allowed.
    event KmsConfigAdded(bytes32 indexed digest);
    event KmsConfigRemoved(bytes32 indexed digest);
    event AppRegistered(address indexed app, address indexed owner, bytes32 salt);
    /// @notice A threshold share set (issue 18): share epoch, t, the group key `s·G`. Followed
    ///         by one {ThresholdNodeSet} per node of the set.
    event ThresholdGroupSet(uint32 indexed shareEpoch, uint16 threshold, bytes groupKey);
    /// @notice Node `index` of share set `shareEpoch`: its verifying share `s_i·G` and the
    ///         address whose signatures count for it in {verifyAppKeyThreshold}.
    event ThresholdNodeSet(
        uint32 indexed shareEpoch, uint16 indexed index, bytes verifyingShare, address signer
    );

    /// @notice One node of a threshold share set.
    struct ThresholdNode {
        /// @dev Its index in the key generation (1..=n): the x of its share.
        uint16 index;
        /// @dev `s_i·G`, compressed (33 bytes, SEC1).
        bytes verifyingShare;
        /// @dev The node's own signing address (not derived from its share).
        address signer;
    }

    // --------------------------------------------------------------- storage

    /// @custom:storage-location erc7201:snpkms.storage.KmsRegistry
    struct KmsRegistryStorage {
        address rootSigningAddress;
        uint32 keyEpoch;
        bool upgradesDisabled;
        bytes tlsPublicKey;
        mapping(bytes32 key => bool) osImages;
        mapping(bytes32 key => bool) kmsMeasurements;
        mapping(bytes32 deviceId => bool) kmsChips;
        uint256 kmsChipCount;
        mapping(uint8 product => TcbVersion) minTcb;
        mapping(address app => bool) apps;
        uint256 appCount;
        // Appended (ERC-7201: new fields only at the end keep upgrades safe).
        mapping(bytes32 digest => bool) kmsConfigs;
        // Version 2: "any chip" and "no minimum TCB" are explicit, never implied by an empty
        // list or an unset minimum.
        bool anyKmsChipAllowed;
        mapping(uint8 product => bool) minTcbSet;
        // Threshold mode (issue 18): 0 until a share set is recorded, then +1 per re-share.
        uint32 shareEpoch;
        uint16 threshold;
        bytes groupKey;
        ThresholdNode[] thresholdNodes;
    }

    // keccak256(abi.encode(uint256(keccak256("snpkms.storage.KmsRegistry")) - 1)) & ~bytes32(uint256(0xff))
    bytes32 private constant STORAGE_LOCATION =
        0x7c52c49ef33b027770e7b58794fbb254af9c116ad376e47a47bfd38f79a53000;

    function _s() private pure returns (KmsRegistryStorage storage $) {
        assembly {
            $.slot := STORAGE_LOCATION
        }
    }

    /// @notice The AppAuth implementation that {registerApp} clones.
    /// @custom:oz-upgrades-unsafe-allow state-variable-immutable
    address public immutable appAuthImplementation;

    /// @custom:oz-upgrades-unsafe-allow constructor
    constructor() {
        _disableInitializers();
        appAuthImplementation = address(new AppAuth());
    }

    /// @notice Initializes a new deployment (at storage version 2: no chip may run the KMS
    ///         and no product is accepted until governance says so). Only a proxy never
    ///         initialized may call it: a version 1 deployment upgraded without {migrateToV2}
    ///         in the same call must not let anyone initialize (and own) it in between.
    function initialize(address initialOwner) external {
        if (_getInitializedVersion() != 0) revert InvalidInitialization();
        _initializeV2(initialOwner);
    }

    function _initializeV2(address initialOwner) private reinitializer(2) {
        __Ownable_init(initialOwner);
        __Ownable2Step_init();
    }

    /// @notice Upgrades the storage of a version 1 deployment (call it in `upgradeToAndCall`)
    ///         keeping what its state meant: an empty KMS chip list allowed any chip, so
    ///         {anyKmsChipAllowed} becomes true for it; a product without a minimum TCB had
    ///         none, so every product's minimum (all zero where never set) counts as set.
    ///         Events record both, so auditors see the explicit state from this block on.
    function migrateToV2() external reinitializer(2) onlyOwner {
        KmsRegistryStorage storage $ = _s();
        bool anyChip = $.kmsChipCount == 0;
        $.anyKmsChipAllowed = anyChip;
        emit AnyKmsChipAllowedSet(anyChip);
        for (uint8 product = 0; product <= SnpLib.MAX_PRODUCT; product++) {
            $.minTcbSet[product] = true;
            emit MinTcbSet(product, $.minTcb[product]);
        }
    }

    // ============================================================ upgrades

    /// @notice Permanently turns off upgrades of this proxy.
    function disableUpgrades() external onlyOwner {
        KmsRegistryStorage storage $ = _s();
        if ($.upgradesDisabled) revert UpgradesAreDisabled();
        $.upgradesDisabled = true;
        emit UpgradesDisabled();
    }

    function upgradesDisabled() external view returns (bool) {
        return _s().upgradesDisabled;
    }

    function _authorizeUpgrade(address) internal view override onlyOwner {
        if (_s().upgradesDisabled) revert UpgradesAreDisabled();
    }

    // ============================================================ KMS info

    function setKmsInfo(address rootSigningAddress, bytes calldata tlsPublicKey) external onlyOwner {
        KmsRegistryStorage storage $ = _s();
        $.rootSigningAddress = rootSigningAddress;
        $.tlsPublicKey = tlsPublicKey;
        emit KmsInfoSet(rootSigningAddress, tlsPublicKey, $.keyEpoch);
    }

    function kmsInfo()
        external
        view
        returns (address rootSigningAddress, bytes memory tlsPublicKey, uint32 keyEpoch_)
    {
        KmsRegistryStorage storage $ = _s();
        return ($.rootSigningAddress, $.tlsPublicKey, $.keyEpoch);
    }

    function keyEpoch() external view returns (uint32) {
        return _s().keyEpoch;
    }

    function bumpKeyEpoch() external onlyOwner {
        KmsRegistryStorage storage $ = _s();
        uint32 epoch = $.keyEpoch + 1;
        $.keyEpoch = epoch;
        emit KeyEpochBumped(epoch);
    }

    // ============================================================ OS images

    function addOsImage(bytes calldata measurement) external onlyOwner {
        bytes32 key = _measurementKey(measurement);
        KmsRegistryStorage storage $ = _s();
        if ($.osImages[key]) revert AlreadyPresent();
        $.osImages[key] = true;
        emit OsImageAdded(key, measurement);
    }

    function removeOsImage(bytes calldata measurement) external onlyOwner {
        bytes32 key = _measurementKey(measurement);
        KmsRegistryStorage storage $ = _s();
        if (!$.osImages[key]) revert NotPresent();
        delete $.osImages[key];
        emit OsImageRemoved(key, measurement);
    }

    function isOsImageAllowed(bytes calldata measurement) public view returns (bool) {
        return measurement.length == SnpLib.MEASUREMENT_LENGTH && _s().osImages[keccak256(measurement)];
    }

    // ===================================================== KMS measurements

    function addKmsMeasurement(bytes calldata measurement) external onlyOwner {
        bytes32 key = _measurementKey(measurement);
        KmsRegistryStorage storage $ = _s();
        if ($.kmsMeasurements[key]) revert AlreadyPresent();
        $.kmsMeasurements[key] = true;
        emit KmsMeasurementAdded(key, measurement);
    }

    function removeKmsMeasurement(bytes calldata measurement) external onlyOwner {
        bytes32 key = _measurementKey(measurement);
        KmsRegistryStorage storage $ = _s();
        if (!$.kmsMeasurements[key]) revert NotPresent();
        delete $.kmsMeasurements[key];
        emit KmsMeasurementRemoved(key, measurement);
    }

    function isKmsMeasurementAllowed(bytes calldata measurement) public view returns (bool) {
        return measurement.length == SnpLib.MEASUREMENT_LENGTH && _s().kmsMeasurements[keccak256(measurement)];
    }

    // ========================================================= KMS configs

    /// @notice Allows KMS nodes whose security configuration (chain view, trust roots, guest
    ///         policy, limits) has this digest. A node seals its root under its digest and serves
    ///         only while {isKmsAllowed} accepts it, so its host cannot change what decides a
    ///         release by editing its configuration.
    function addKmsConfig(bytes32 digest) external onlyOwner {
        KmsRegistryStorage storage $ = _s();
        if ($.kmsConfigs[digest]) revert AlreadyPresent();
        $.kmsConfigs[digest] = true;
        emit KmsConfigAdded(digest);
    }

    function removeKmsConfig(bytes32 digest) external onlyOwner {
        KmsRegistryStorage storage $ = _s();
        if (!$.kmsConfigs[digest]) revert NotPresent();
        delete $.kmsConfigs[digest];
        emit KmsConfigRemoved(digest);
    }

    function isKmsConfigAllowed(bytes32 digest) external view returns (bool) {
        return _s().kmsConfigs[digest];
    }

    // ============================================================ KMS chips

    function addKmsChip(bytes calldata chipId) external onlyOwner {
        bytes32 deviceId = _chipKey(chipId);
        KmsRegistryStorage storage $ = _s();
        if ($.kmsChips[deviceId]) revert AlreadyPresent();
        $.kmsChips[deviceId] = true;
        $.kmsChipCount += 1;
        emit KmsChipAdded(deviceId, chipId);
    }

    function removeKmsChip(bytes calldata chipId) external onlyOwner {
        bytes32 deviceId = _chipKey(chipId);
        KmsRegistryStorage storage $ = _s();
        if (!$.kmsChips[deviceId]) revert NotPresent();
        delete $.kmsChips[deviceId];
        $.kmsChipCount -= 1;
        emit KmsChipRemoved(deviceId, chipId);
    }

    /// @notice Number of chips on the KMS chip allow-list. An empty list allows no chip (unless
    ///         {anyKmsChipAllowed}): removing the last chip does not open the list.
    function kmsChipCount() external view returns (uint256) {
        return _s().kmsChipCount;
    }

    /// @notice Lets any chip run the KMS (`true`), or only listed chips (`false`).
    function setAnyKmsChipAllowed(bool allowed) external onlyOwner {
        _s().anyKmsChipAllowed = allowed;
        emit AnyKmsChipAllowedSet(allowed);
    }

    /// @notice Whether any chip may run the KMS, whatever the chip list holds.
    function anyKmsChipAllowed() external view returns (bool) {
        return _s().anyKmsChipAllowed;
    }

    /// @notice Whether `chipId` is on the KMS chip allow-list (ignores {anyKmsChipAllowed}).
    function isKmsChipListed(bytes calldata chipId) external view returns (bool) {
        return chipId.length == SnpLib.CHIP_ID_LENGTH && _s().kmsChips[keccak256(chipId)];
    }

    // ============================================================== min TCB

    function setMinTcb(uint8 product, TcbVersion calldata tcb) external onlyOwner {
        if (product > SnpLib.MAX_PRODUCT) revert UnknownProduct(product);
        if (product != SnpLib.PRODUCT_TURIN && tcb.fmc != 0) revert FmcNotSupported(product);
        KmsRegistryStorage storage $ = _s();
        $.minTcb[product] = tcb;
        $.minTcbSet[product] = true;
        emit MinTcbSet(product, tcb);
    }

    /// @notice The minimum TCB for `product` (all zero until set; see {isMinTcbSet}). Reverts
    ///         for unknown products.
    function minTcb(uint8 product) external view returns (TcbVersion memory) {
        if (product > SnpLib.MAX_PRODUCT) revert UnknownProduct(product);
        return _s().minTcb[product];
    }

    /// @notice Whether governance set a minimum TCB for `product`: until it does, no report of
    ///         that product is allowed. Reverts for unknown products.
    function isMinTcbSet(uint8 product) external view returns (bool) {
        if (product > SnpLib.MAX_PRODUCT) revert UnknownProduct(product);
        return _s().minTcbSet[product];
    }

    // ================================================================= apps

    /// @notice Deploys and registers a new app: an AppAuth clone owned by msg.sender.
    ///         Anyone may register. The address is deterministic, see {predictAppAddress}.
    function registerApp(bytes32 salt) external returns (address app) {
        bytes32 cloneSalt = _cloneSalt(msg.sender, salt);
        KmsRegistryStorage storage $ = _s();
        if ($.apps[Clones.predictDeterministicAddress(appAuthImplementation, cloneSalt)]) {
            revert AlreadyPresent();
        }
        app = Clones.cloneDeterministic(appAuthImplementation, cloneSalt);
        AppAuth(app).initialize(msg.sender, address(this));
        $.apps[app] = true;
        $.appCount += 1;
        emit AppRegistered(app, msg.sender, salt);
    }

    function predictAppAddress(address owner_, bytes32 salt) external view returns (address) {
        return Clones.predictDeterministicAddress(appAuthImplementation, _cloneSalt(owner_, salt));
    }

    function isAppRegistered(address app) public view returns (bool) {
        return _s().apps[app];
    }

    function appCount() external view returns (uint256) {
        return _s().appCount;
    }

    // ======================================================== authorization

    /// @notice May an app CVM with this boot info get its keys?
    /// @return allowed true iff allowed.
    /// @return reason "" when allowed, else one of: "unknown product", "bad measurement length",
    ///         "bad chip id length", "os image not allowed", "no minimum tcb for product",
    ///         "tcb below minimum", "app not registered", "app disabled", "compose hash not allowed",
    ///         "no device identity", "device not allowed".
    function isAppAllowed(BootInfo calldata info) external view returns (bool allowed, string memory reason) {
        (allowed, reason) = _checkCommon(info);
        if (!allowed) return (allowed, reason);
        KmsRegistryStorage storage $ = _s();
        if (!$.osImages[keccak256(info.measurement)]) return (false, "os image not allowed");
        (allowed, reason) = _checkTcb(info);
        if (!allowed) return (allowed, reason);
        if (!$.apps[info.appId]) return (false, "app not registered");
        AppAuth app = AppAuth(info.appId);
        if (!app.enabled()) return (false, "app disabled");
        return app.isAppAllowed(info);
    }

    /// @notice May a KMS CVM with this boot info, running with this security configuration,
    ///         serve keys, join the KMS or receive the root keys? `appId` and `composeHash` are ignored.
    /// @param configDigest the node's security-configuration digest, bound into its evidence.
    /// @return allowed true iff allowed.
    /// @return reason "" when allowed, else one of: "unknown product", "bad measurement length",
    ///         "bad chip id length", "kms measurement not allowed", "kms config not allowed",
    ///         "no minimum tcb for product", "tcb below minimum", "kms chip not allowed".
    function isKmsAllowed(BootInfo calldata info, bytes32 configDigest)
        external
        view
        returns (bool allowed, string memory reason)
    {
        (allowed, reason) = _checkCommon(info);
        if (!allowed) return (allowed, reason);
        KmsRegistryStorage storage $ = _s();
        if (!$.kmsMeasurements[keccak256(info.measurement)]) return (false, "kms measurement not allowed");
        if (!$.kmsConfigs[configDigest]) return (false, "kms config not allowed");
        (allowed, reason) = _checkTcb(info);
        if (!allowed) return (allowed, reason);
        // An empty chipId (no device identity: VLEK-signed evidence or a masked chip id) is
        // on no chip list: only anyKmsChipAllowed admits it.
        if (!$.anyKmsChipAllowed && (info.chipId.length == 0 || !$.kmsChips[keccak256(info.chipId)])) {
            return (false, "kms chip not allowed");
        }
        return (true, "");
    }

    /// @notice Checks that the KMS root signing key signed `appSigningAddress` as the signing
    ///         key of `appId` for key epoch `epoch`. The signature (65 bytes r||s||v) is over
    ///         {AppKeyLib.appKeyDigest}. Never reverts on malformed signatures.
    function verifyAppKey(address appId, address appSigningAddress, uint32 epoch, bytes calldata signature)
        external
        view
        returns (bool)
    {
        KmsRegistryStorage storage $ = _s();
        // In the threshold mode no node holds a root: a root signature vouches for nothing.
        if ($.shareEpoch != 0) return false;
        address root = $.rootSigningAddress;
        if (root == address(0)) return false;
        (address recovered, ECDSA.RecoverError err,) =
            ECDSA.tryRecoverCalldata(AppKeyLib.appKeyDigest(appId, appSigningAddress, epoch), signature);
        return err == ECDSA.RecoverError.NoError && recovered == root;
    }

    // ============================================================ threshold mode

    /// @notice The most nodes a share set may have (`snpkms_threshold::group::MAX_NODES`).
    uint256 public constant MAX_THRESHOLD_NODES = 255;

    /// @notice Records a threshold share set (made by the nodes' distributed key generation) and
    ///         with it the threshold mode. A later call is a re-share: a new node set and new
    ///         shares of the same secret, so the group key must stay the same (app keys do not
    ///         change); the share epoch goes up by one and the old set stops counting. Whether
    ///         the verifying shares are consistent with the group key is not checked here (no
    ///         secp256k1 arithmetic on-chain): every guest checks it before it uses them.
    function setThresholdGroup(uint16 threshold_, bytes calldata groupKey, ThresholdNode[] calldata nodes)
        external
        onlyOwner
    {
        // The guests' consistency check is O(n·t): a set they would all refuse is refused here.
        if (nodes.length > MAX_THRESHOLD_NODES) revert TooManyNodes(nodes.length);
        if (threshold_ == 0 || threshold_ > nodes.length) revert BadThreshold(threshold_, nodes.length);
        _checkPoint(groupKey);
        KmsRegistryStorage storage $ = _s();
        if ($.shareEpoch != 0 && keccak256($.groupKey) != keccak256(groupKey)) revert GroupKeyChanged();
        uint32 shareEpoch_ = $.shareEpoch + 1;
        $.shareEpoch = shareEpoch_;
        $.threshold = threshold_;
        $.groupKey = groupKey;
        delete $.thresholdNodes;
        emit ThresholdGroupSet(shareEpoch_, threshold_, groupKey);
        uint16 previous = 0;
        for (uint256 i = 0; i < nodes.length; i++) {
            ThresholdNode calldata node = nodes[i];
            // Strictly increasing indices from 1: distinct, and never the secret's x = 0.
            if (node.index <= previous) revert NodeIndicesNotIncreasing(node.index);
            previous = node.index;
            _checkPoint(node.verifyingShare);
            if (node.signer == address(0)) revert BadNodeSigner(node.signer);
            for (uint256 j = 0; j < i; j++) {
                if (nodes[j].signer == node.signer) revert BadNodeSigner(node.signer);
            }
            $.thresholdNodes.push(node);
            emit ThresholdNodeSet(shareEpoch_, node.index, node.verifyingShare, node.signer);
        }
    }

    /// @notice The current threshold share set; share epoch 0 (and nothing else) in the
    ///         replicated-root mode.
    function thresholdGroup()
        external
        view
        returns (uint32 shareEpoch, uint16 threshold_, bytes memory groupKey, ThresholdNode[] memory nodes)
    {
        KmsRegistryStorage storage $ = _s();
        return ($.shareEpoch, $.threshold, $.groupKey, $.thresholdNodes);
    }

    /// @notice Whether this deployment runs the threshold mode (a share set is recorded).
    function thresholdMode() external view returns (bool) {
        return _s().shareEpoch != 0;
    }

    /// @notice Checks that at least t distinct nodes of the current share set signed
    ///         `appSigningAddress` as the signing key of `appId` at key epoch `epoch` (each a
    ///         65-byte r||s||v over {AppKeyLib.appKeyDigest}, as {verifyAppKey}). Signatures
    ///         that do not recover to a node of the set, or repeat one, do not count. Never
    ///         reverts on malformed signatures; false in the replicated-root mode.
    function verifyAppKeyThreshold(
        address appId,
        address appSigningAddress,
        uint32 epoch,
        bytes[] calldata signatures
    ) external view returns (bool) {
        KmsRegistryStorage storage $ = _s();
        if ($.shareEpoch == 0) return false;
        bytes32 digest = AppKeyLib.appKeyDigest(appId, appSigningAddress, epoch);
        ThresholdNode[] storage nodes = $.thresholdNodes;
        uint256 n = nodes.length;
        address[] memory signers = new address[](n);
        for (uint256 j = 0; j < n; j++) {
            signers[j] = nodes[j].signer;
        }
        bool[] memory counted = new bool[](n);
        uint256 count = 0;
        for (uint256 i = 0; i < signatures.length; i++) {
            (address recovered, ECDSA.RecoverError err,) = ECDSA.tryRecoverCalldata(digest, signatures[i]);
            if (err != ECDSA.RecoverError.NoError) continue;
            for (uint256 j = 0; j < n; j++) {
                if (signers[j] == recovered && !counted[j]) {
                    counted[j] = true;
                    count++;
                    break;
                }
            }
            if (count >= $.threshold) return true;
        }
        return false;
    }

    // ============================================================ internals

    function _checkPoint(bytes calldata point) private pure {
        if (point.length != 33 || (point[0] != 0x02 && point[0] != 0x03)) {
            revert BadPointEncoding(point.length);
        }
    }

    function _checkCommon(BootInfo calldata info) private pure returns (bool, string memory) {
        if (info.product > SnpLib.MAX_PRODUCT) return (false, "unknown product");
        if (info.measurement.length != SnpLib.MEASUREMENT_LENGTH) return (false, "bad measurement length");
        // 64 bytes, or empty when no AMD certificate ties the guest to a chip.
        if (info.chipId.length != SnpLib.CHIP_ID_LENGTH && info.chipId.length != 0) {
            return (false, "bad chip id length");
        }
        return (true, "");
    }

    function _checkTcb(BootInfo calldata info) private view returns (bool, string memory) {
        KmsRegistryStorage storage $ = _s();
        if (!$.minTcbSet[info.product]) return (false, "no minimum tcb for product");
        TcbVersion memory min = $.minTcb[info.product];
        bool ok = SnpLib.tcbAtLeast(info.reportedTcb, min) && SnpLib.tcbAtLeast(info.committedTcb, min)
            && SnpLib.tcbAtLeast(info.launchTcb, min);
        return ok ? (true, "") : (false, "tcb below minimum");
    }

    function _measurementKey(bytes calldata measurement) private pure returns (bytes32) {
        if (measurement.length != SnpLib.MEASUREMENT_LENGTH) revert BadMeasurementLength(measurement.length);
        return keccak256(measurement);
    }

    function _chipKey(bytes calldata chipId) private pure returns (bytes32) {
        if (chipId.length != SnpLib.CHIP_ID_LENGTH) revert BadChipIdLength(chipId.length);
        return keccak256(chipId);
    }

    function _cloneSalt(address owner_, bytes32 salt) private pure returns (bytes32) {
        return keccak256(abi.encode(owner_, salt));
    }
}
