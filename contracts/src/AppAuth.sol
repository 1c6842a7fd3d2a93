// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {Initializable} from "@openzeppelin/contracts-upgradeable/proxy/utils/Initializable.sol";
import {
    Ownable2StepUpgradeable
} from "@openzeppelin/contracts-upgradeable/access/Ownable2StepUpgradeable.sol";
import {BootInfo} from "./SnpTypes.sol";

/// @title AppAuth
/// @notice Per-app authorization policy, owned by the app owner. Deployed by
///         {KmsRegistry.registerApp} as an EIP-1167 clone of a single implementation.
/// @dev Every event carries `address indexed app` (= address(this)) first, so auditors can
///      filter the events of one app (by topic 1) or of all apps (by topic 0 only).
contract AppAuth is Initializable, Ownable2StepUpgradeable {
    // ---------------------------------------------------------------- errors
    error AlreadyPresent();
    error NotPresent();
    error ZeroRegistry();

    // ---------------------------------------------------------------- events
    event ComposeHashAdded(address indexed app, bytes32 indexed composeHash);
    event ComposeHashRemoved(address indexed app, bytes32 indexed composeHash);
    event DeviceAdded(address indexed app, bytes32 indexed deviceId);
    event DeviceRemoved(address indexed app, bytes32 indexed deviceId);
    event AllowAnyDeviceSet(address indexed app, bool allowed);
    event AppEnabled(address indexed app);
    event AppDisabled(address indexed app);

    // --------------------------------------------------------------- storage
    // Clones are never upgraded, so plain sequential storage is fine here
    // (OZ's Ownable state lives in its own ERC-7201 namespace).
    address private _registry;
    bool private _enabled;
    bool private _allowAnyDevice;
    mapping(bytes32 composeHash => bool) private _composeHashes;
    mapping(bytes32 deviceId => bool) private _devices;

    /// @custom:oz-upgrades-unsafe-allow constructor
    constructor() {
        _disableInitializers();
    }

    /// @notice Initializes a freshly deployed clone. Called by the registry in the same
    ///         transaction that deploys the clone.
    function initialize(address initialOwner, address registry_) external initializer {
        if (registry_ == address(0)) revert ZeroRegistry();
        __Ownable_init(initialOwner);
        __Ownable2Step_init();
        _registry = registry_;
        _enabled = true;
    }

    // ---------------------------------------------------------------- views

    /// @notice The KmsRegistry this app is registered with.
    function registry() external view returns (address) {
        return _registry;
    }

    function enabled() external view returns (bool) {
        return _enabled;
    }

    function allowAnyDevice() external view returns (bool) {
        return _allowAnyDevice;
    }

    function isComposeHashAllowed(bytes32 composeHash) external view returns (bool) {
        return _composeHashes[composeHash];
    }

    /// @param deviceId keccak256 of the 64-byte SNP chip id.
    function isDeviceAllowed(bytes32 deviceId) external view returns (bool) {
        return _devices[deviceId];
    }

    /// @notice The app-specific part of the boot authorization.
    /// @return allowed true iff the app may boot with `info`.
    /// @return reason "" when allowed, else "app disabled", "compose hash not allowed",
    ///         "no device identity" (an empty chipId: VLEK-signed evidence or a masked chip id,
    ///         which only {allowAnyDevice} admits) or "device not allowed".
    function isAppAllowed(BootInfo calldata info) external view returns (bool allowed, string memory reason) {
        if (!_enabled) return (false, "app disabled");
        if (!_composeHashes[info.composeHash]) return (false, "compose hash not allowed");
        if (!_allowAnyDevice) {
            // An empty chipId is a guest no AMD certificate ties to a chip (VLEK-signed
            // evidence, or a masked chip id): it is on no device list.
            if (info.chipId.length == 0) return (false, "no device identity");
            if (!_devices[keccak256(info.chipId)]) return (false, "device not allowed");
        }
        return (true, "");
    }

    // ------------------------------------------------------------ mutations

    function addComposeHash(bytes32 composeHash) external onlyOwner {
        if (_composeHashes[composeHash]) revert AlreadyPresent();
        _composeHashes[composeHash] = true;
        emit ComposeHashAdded(address(this), composeHash);
    }

    function removeComposeHash(bytes32 composeHash) external onlyOwner {
        if (!_composeHashes[composeHash]) revert NotPresent();
        delete _composeHashes[composeHash];
        emit ComposeHashRemoved(address(this), composeHash);
    }

    /// @param deviceId keccak256 of the 64-byte SNP chip id.
    function addDevice(bytes32 deviceId) external onlyOwner {
        if (_devices[deviceId]) revert AlreadyPresent();
        _devices[deviceId] = true;
        emit DeviceAdded(address(this), deviceId);
    }

    function removeDevice(bytes32 deviceId) external onlyOwner {
        if (!_devices[deviceId]) revert NotPresent();
        delete _devices[deviceId];
        emit DeviceRemoved(address(this), deviceId);
    }

    function setAllowAnyDevice(bool allowed) external onlyOwner {
        _allowAnyDevice = allowed;
        emit AllowAnyDeviceSet(address(this), allowed);
    }

    function enable() external onlyOwner {
        _enabled = true;
        emit AppEnabled(address(this));
    }

    function disable() external onlyOwner {
        _enabled = false;
        emit AppDisabled(address(this));
    }
}
