// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {Initializable} from "@openzeppelin/contracts-upgradeable/proxy/utils/Initializable.sol";
import {OwnableUpgradeable} from "@openzeppelin/contracts-upgradeable/access/OwnableUpgradeable.sol";
import {
    Ownable2StepUpgradeable
} from "@openzeppelin/contracts-upgradeable/access/Ownable2StepUpgradeable.sol";
import {Clones} from "@openzeppelin/contracts/proxy/Clones.sol";

import {Fixture} from "./utils/Fixture.sol";
import {AppAuth} from "../src/AppAuth.sol";
import {BootInfo} from "../src/SnpTypes.sol";

/// @notice AppAuth (per-app policy): state, events, access control, ownership, isAppAllowed.
contract AppAuthTest is Fixture {
    AppAuth internal app;
    bytes32 internal constant H1 = keccak256("compose-1");
    bytes32 internal constant H2 = keccak256("compose-2");
    bytes32 internal D1;
    bytes32 internal D2;

    function setUp() public {
        registry = deployRegistry(OWNER);
        vm.prank(APP_OWNER);
        app = AppAuth(registry.registerApp(keccak256("app")));
        D1 = keccak256(chipId(0x41));
        D2 = keccak256(chipId(0x42));
    }

    function test_initialState() public view {
        assertEq(app.owner(), APP_OWNER, "owner");
        assertEq(app.pendingOwner(), address(0), "pending");
        assertEq(app.registry(), address(registry), "registry");
        assertTrue(app.enabled(), "enabled");
        assertFalse(app.allowAnyDevice(), "allowAnyDevice");
        assertFalse(app.isComposeHashAllowed(H1), "compose");
        assertFalse(app.isDeviceAllowed(D1), "device");
    }

    function test_initialize_zeroRegistry_reverts() public {
        AppAuth fresh = AppAuth(Clones.clone(registry.appAuthImplementation()));
        vm.expectRevert(AppAuth.ZeroRegistry.selector);
        fresh.initialize(APP_OWNER, address(0));
    }

    function test_initialize_zeroOwner_reverts() public {
        AppAuth fresh = AppAuth(Clones.clone(registry.appAuthImplementation()));
        vm.expectRevert(abi.encodeWithSignature("OwnableInvalidOwner(address)", address(0)));
        fresh.initialize(address(0), address(registry));
    }

    function test_reinitialize_reverts() public {
        vm.expectRevert(Initializable.InvalidInitialization.selector);
        app.initialize(STRANGER, STRANGER);
    }

    // ----------------------------------------------------------- compose hashes

    function test_composeHash_add_remove() public {
        vm.expectEmit(true, true, true, true, address(app));
        emit AppAuth.ComposeHashAdded(address(app), H1);
        vm.prank(APP_OWNER);
        app.addComposeHash(H1);
        assertTrue(app.isComposeHashAllowed(H1), "h1");
        assertFalse(app.isComposeHashAllowed(H2), "h2");

        vm.expectRevert(AppAuth.AlreadyPresent.selector);
        vm.prank(APP_OWNER);
        app.addComposeHash(H1);

        vm.expectEmit(true, true, true, true, address(app));
        emit AppAuth.ComposeHashRemoved(address(app), H1);
        vm.prank(APP_OWNER);
        app.removeComposeHash(H1);
        assertFalse(app.isComposeHashAllowed(H1), "h1 removed");

        vm.expectRevert(AppAuth.NotPresent.selector);
        vm.prank(APP_OWNER);
        app.removeComposeHash(H1);
    }

    function test_composeHash_onlyOwner() public {
        expectOwnable(STRANGER);
        vm.prank(STRANGER);
        app.addComposeHash(H1);
        vm.prank(APP_OWNER);
        app.addComposeHash(H1);
        expectOwnable(STRANGER);
        vm.prank(STRANGER);
        app.removeComposeHash(H1);
        // the registry owner has no say over an app either
        expectOwnable(OWNER);
        vm.prank(OWNER);
        app.removeComposeHash(H1);
    }

    // ----------------------------------------------------------------- devices

    function test_device_add_remove() public {
        vm.expectEmit(true, true, true, true, address(app));
        emit AppAuth.DeviceAdded(address(app), D1);
        vm.prank(APP_OWNER);
        app.addDevice(D1);
        assertTrue(app.isDeviceAllowed(D1), "d1");
        assertFalse(app.isDeviceAllowed(D2), "d2");

        vm.expectRevert(AppAuth.AlreadyPresent.selector);
        vm.prank(APP_OWNER);
        app.addDevice(D1);

        vm.expectEmit(true, true, true, true, address(app));
        emit AppAuth.DeviceRemoved(address(app), D1);
        vm.prank(APP_OWNER);
        app.removeDevice(D1);
        assertFalse(app.isDeviceAllowed(D1), "d1 removed");

        vm.expectRevert(AppAuth.NotPresent.selector);
        vm.prank(APP_OWNER);
        app.removeDevice(D1);
    }

    function test_device_onlyOwner() public {
        expectOwnable(STRANGER);
        vm.prank(STRANGER);
        app.addDevice(D1);
        vm.prank(APP_OWNER);
        app.addDevice(D1);
        expectOwnable(STRANGER);
        vm.prank(STRANGER);
        app.removeDevice(D1);
    }

    function test_allowAnyDevice() public {
        vm.expectEmit(true, true, true, true, address(app));
        emit AppAuth.AllowAnyDeviceSet(address(app), true);
        vm.prank(APP_OWNER);
        app.setAllowAnyDevice(true);
        assertTrue(app.allowAnyDevice(), "on");

        vm.expectEmit(true, true, true, true, address(app));
        emit AppAuth.AllowAnyDeviceSet(address(app), false);
        vm.prank(APP_OWNER);
        app.setAllowAnyDevice(false);
        assertFalse(app.allowAnyDevice(), "off");
    }

    function test_allowAnyDevice_onlyOwner() public {
        expectOwnable(STRANGER);
        vm.prank(STRANGER);
        app.setAllowAnyDevice(true);
    }

    // -------------------------------------------------------- enable / disable

    function test_enable_disable() public {
        vm.expectEmit(true, true, true, true, address(app));
        emit AppAuth.AppDisabled(address(app));
        vm.prank(APP_OWNER);
        app.disable();
        assertFalse(app.enabled(), "disabled");

        vm.expectEmit(true, true, true, true, address(app));
        emit AppAuth.AppEnabled(address(app));
        vm.prank(APP_OWNER);
        app.enable();
        assertTrue(app.enabled(), "enabled");
    }

    function test_enable_disable_onlyOwner() public {
        expectOwnable(STRANGER);
        vm.prank(STRANGER);
        app.disable();
        expectOwnable(STRANGER);
        vm.prank(STRANGER);
        app.enable();
    }

    /// @dev Events of different apps are told apart by the indexed `app` topic.
    function test_events_carryAppAddress() public {
        vm.prank(APP_OWNER);
        AppAuth other = AppAuth(registry.registerApp(keccak256("other")));
        vm.expectEmit(true, true, true, true, address(other));
        emit AppAuth.ComposeHashAdded(address(other), H1);
        vm.prank(APP_OWNER);
        other.addComposeHash(H1);
        assertFalse(app.isComposeHashAllowed(H1), "apps are independent");
    }

    // ------------------------------------------------------------ isAppAllowed

    function _info(bytes32 composeHash, bytes memory chip) internal view returns (BootInfo memory) {
        return bootInfo(measurement(0x11), chip, address(app), composeHash, 0, tcb(0, 0, 0, 0, 0));
    }

    function _expect(BootInfo memory info, bool wantAllowed, string memory wantReason) internal view {
        (bool allowed, string memory reason) = app.isAppAllowed(info);
        assertEq(reason, wantReason, "reason");
        assertEq(allowed, wantAllowed, "allowed");
    }

    function test_isAppAllowed() public {
        bytes memory c1 = chipId(0x41);
        bytes memory c2 = chipId(0x42);
        _expect(_info(H1, c1), false, "compose hash not allowed");

        vm.prank(APP_OWNER);
        app.addComposeHash(H1);
        _expect(_info(H1, c1), false, "device not allowed");
        _expect(_info(H2, c1), false, "compose hash not allowed");

        vm.prank(APP_OWNER);
        app.addDevice(D1);
        _expect(_info(H1, c1), true, "");
        _expect(_info(H1, c2), false, "device not allowed");

        vm.prank(APP_OWNER);
        app.setAllowAnyDevice(true);
        _expect(_info(H1, c2), true, "");
        _expect(_info(H2, c2), false, "compose hash not allowed");

        vm.prank(APP_OWNER);
        app.disable();
        _expect(_info(H1, c1), false, "app disabled");
    }

    // -------------------------------------------------------- two-step ownership

    function test_ownership_twoStep() public {
        address newOwner = address(0xB0B);
        vm.expectEmit(true, true, true, true, address(app));
        emit Ownable2StepUpgradeable.OwnershipTransferStarted(APP_OWNER, newOwner);
        vm.prank(APP_OWNER);
        app.transferOwnership(newOwner);
        assertEq(app.owner(), APP_OWNER, "unchanged until accepted");
        assertEq(app.pendingOwner(), newOwner, "pending");

        expectOwnable(newOwner);
        vm.prank(newOwner);
        app.addComposeHash(H1);

        expectOwnable(STRANGER);
        vm.prank(STRANGER);
        app.acceptOwnership();

        vm.expectEmit(true, true, true, true, address(app));
        emit OwnableUpgradeable.OwnershipTransferred(APP_OWNER, newOwner);
        vm.prank(newOwner);
        app.acceptOwnership();
        assertEq(app.owner(), newOwner, "new owner");
        assertEq(app.pendingOwner(), address(0), "pending cleared");

        expectOwnable(APP_OWNER);
        vm.prank(APP_OWNER);
        app.addComposeHash(H1);
        vm.prank(newOwner);
        app.addComposeHash(H1);
        assertTrue(app.isComposeHashAllowed(H1), "new owner acts");
    }

    function test_ownership_transfer_onlyOwner() public {
        expectOwnable(STRANGER);
        vm.prank(STRANGER);
        app.transferOwnership(STRANGER);
    }
}
