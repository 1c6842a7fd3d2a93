// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {Initializable} from "@openzeppelin/contracts-upgradeable/proxy/utils/Initializable.sol";
import {OwnableUpgradeable} from "@openzeppelin/contracts-upgradeable/access/OwnableUpgradeable.sol";
import {
    Ownable2StepUpgradeable
} from "@openzeppelin/contracts-upgradeable/access/Ownable2StepUpgradeable.sol";
import {ERC1967Utils} from "@openzeppelin/contracts/proxy/ERC1967/ERC1967Utils.sol";
import {IERC1967} from "@openzeppelin/contracts/interfaces/IERC1967.sol";

import {Fixture} from "./utils/Fixture.sol";
import {KmsRegistry} from "../src/KmsRegistry.sol";
import {AppAuth} from "../src/AppAuth.sol";
import {TcbVersion} from "../src/SnpTypes.sol";
import {KmsRegistryV2} from "./mocks/KmsRegistryV2.sol";
import {KmsRegistryV1} from "./mocks/KmsRegistryV1.sol";
import {ERC1967Proxy} from "@openzeppelin/contracts/proxy/ERC1967/ERC1967Proxy.sol";
import {BootInfo} from "../src/SnpTypes.sol";

/// @notice Governance functions of KmsRegistry: state, events, access control, upgrades, ownership.
contract KmsRegistryTest is Fixture {
    function setUp() public {
        registry = deployRegistry(OWNER);
    }

    // ------------------------------------------------------------ initialize

    function test_initialize_state() public view {
        assertEq(registry.owner(), OWNER, "owner");
        assertEq(registry.pendingOwner(), address(0), "pendingOwner");
        assertEq(registry.keyEpoch(), 0, "epoch");
        assertFalse(registry.upgradesDisabled(), "upgradesDisabled");
        assertEq(registry.appCount(), 0, "appCount");
        assertEq(registry.kmsChipCount(), 0, "kmsChipCount");
        (address root, bytes memory tls, uint32 epoch) = registry.kmsInfo();
        assertEq(root, address(0), "root");
        assertEq(tls.length, 0, "tls");
        assertEq(epoch, 0, "kmsInfo epoch");
        assertTrue(registry.appAuthImplementation() != address(0), "appAuthImplementation");
        assertEq(
            registry.appAuthImplementation(), registryImpl.appAuthImplementation(), "immutable via proxy"
        );
        bytes32 implSlot = vm.load(address(registry), ERC1967Utils.IMPLEMENTATION_SLOT);
        assertEq(address(uint160(uint256(implSlot))), address(registryImpl), "proxy implementation");
    }

    function test_initialize_twice_reverts() public {
        vm.expectRevert(Initializable.InvalidInitialization.selector);
        registry.initialize(STRANGER);
    }

    function test_implementation_cannot_be_initialized() public {
        vm.expectRevert(Initializable.InvalidInitialization.selector);
        registryImpl.initialize(STRANGER);
    }

    function test_appAuthImplementation_cannot_be_initialized() public {
        AppAuth impl = AppAuth(registry.appAuthImplementation());
        vm.expectRevert(Initializable.InvalidInitialization.selector);
        impl.initialize(STRANGER, address(registry));
    }

    // -------------------------------------------------------------- KMS info

    function test_setKmsInfo() public {
        bytes memory tls = hex"3059301306072a8648ce3d020106082a8648ce3d03010703420004aabb";
        vm.expectEmit(true, true, true, true, address(registry));
        emit KmsRegistry.KmsInfoSet(address(0x5157), tls, 0);
        vm.prank(OWNER);
        registry.setKmsInfo(address(0x5157), tls);
        (address root, bytes memory gotTls, uint32 epoch) = registry.kmsInfo();
        assertEq(root, address(0x5157), "root");
        assertEq(gotTls, tls, "tls");
        assertEq(epoch, 0, "epoch");

        // overwrite, and the event carries the current epoch
        vm.prank(OWNER);
        registry.bumpKeyEpoch();
        vm.expectEmit(true, true, true, true, address(registry));
        emit KmsRegistry.KmsInfoSet(address(0x6157), hex"01", 1);
        vm.prank(OWNER);
        registry.setKmsInfo(address(0x6157), hex"01");
        (root, gotTls, epoch) = registry.kmsInfo();
        assertEq(root, address(0x6157), "root 2");
        assertEq(gotTls, hex"01", "tls 2");
        assertEq(epoch, 1, "epoch 2");
    }

    function test_setKmsInfo_onlyOwner() public {
        expectOwnable(STRANGER);
        vm.prank(STRANGER);
        registry.setKmsInfo(address(1), hex"00");
    }

    function test_bumpKeyEpoch() public {
        for (uint32 i = 1; i <= 3; i++) {
            vm.expectEmit(true, true, true, true, address(registry));
            emit KmsRegistry.KeyEpochBumped(i);
            vm.prank(OWNER);
            registry.bumpKeyEpoch();
            assertEq(registry.keyEpoch(), i, "epoch");
            (,, uint32 e) = registry.kmsInfo();
            assertEq(e, i, "kmsInfo epoch");
        }
    }

    function test_bumpKeyEpoch_onlyOwner() public {
        expectOwnable(STRANGER);
        vm.prank(STRANGER);
        registry.bumpKeyEpoch();
    }

    // ------------------------------------------------------------- OS images

    function test_osImage_add_remove() public {
        bytes memory m = measurement(0x11);
        bytes32 key = keccak256(m);
        assertFalse(registry.isOsImageAllowed(m), "initially absent");

        vm.expectEmit(true, true, true, true, address(registry));
        emit KmsRegistry.OsImageAdded(key, m);
        vm.prank(OWNER);
        registry.addOsImage(m);
        assertTrue(registry.isOsImageAllowed(m), "added");
        assertFalse(registry.isOsImageAllowed(measurement(0x12)), "other absent");
        assertFalse(registry.isKmsMeasurementAllowed(m), "separate from kms measurements");

        vm.expectRevert(KmsRegistry.AlreadyPresent.selector);
        vm.prank(OWNER);
        registry.addOsImage(m);

        vm.expectEmit(true, true, true, true, address(registry));
        emit KmsRegistry.OsImageRemoved(key, m);
        vm.prank(OWNER);
        registry.removeOsImage(m);
        assertFalse(registry.isOsImageAllowed(m), "removed");

        vm.expectRevert(KmsRegistry.NotPresent.selector);
        vm.prank(OWNER);
        registry.removeOsImage(m);
    }

    function test_osImage_badLength() public {
        uint256[4] memory lens = [uint256(0), 32, 47, 49];
        for (uint256 i = 0; i < lens.length; i++) {
            bytes memory m = bytesOfLength(lens[i]);
            vm.expectRevert(abi.encodeWithSelector(KmsRegistry.BadMeasurementLength.selector, lens[i]));
            vm.prank(OWNER);
            registry.addOsImage(m);
            vm.expectRevert(abi.encodeWithSelector(KmsRegistry.BadMeasurementLength.selector, lens[i]));
            vm.prank(OWNER);
            registry.removeOsImage(m);
            assertFalse(registry.isOsImageAllowed(m), "bad length never allowed");
        }
    }

    function test_osImage_onlyOwner() public {
        bytes memory m = measurement(0x11);
        expectOwnable(STRANGER);
        vm.prank(STRANGER);
        registry.addOsImage(m);

        vm.prank(OWNER);
        registry.addOsImage(m);
        expectOwnable(STRANGER);
        vm.prank(STRANGER);
        registry.removeOsImage(m);
    }

    // ------------------------------------------------------ KMS configs

    function test_kmsConfig_add_remove() public {
        bytes32 d = keccak256("security config");
        assertFalse(registry.isKmsConfigAllowed(d), "initially absent");

        vm.expectEmit(true, true, true, true, address(registry));
        emit KmsRegistry.KmsConfigAdded(d);
        vm.prank(OWNER);
        registry.addKmsConfig(d);
        assertTrue(registry.isKmsConfigAllowed(d), "added");
        assertFalse(registry.isKmsConfigAllowed(keccak256("other")), "other absent");

        vm.expectRevert(KmsRegistry.AlreadyPresent.selector);
        vm.prank(OWNER);
        registry.addKmsConfig(d);

        vm.expectEmit(true, true, true, true, address(registry));
        emit KmsRegistry.KmsConfigRemoved(d);
        vm.prank(OWNER);
        registry.removeKmsConfig(d);
        assertFalse(registry.isKmsConfigAllowed(d), "removed");

        vm.expectRevert(KmsRegistry.NotPresent.selector);
        vm.prank(OWNER);
        registry.removeKmsConfig(d);
    }

    function test_kmsConfig_onlyOwner() public {
        bytes32 d = keccak256("security config");
        expectOwnable(STRANGER);
        vm.prank(STRANGER);
        registry.addKmsConfig(d);

        vm.prank(OWNER);
        registry.addKmsConfig(d);
        expectOwnable(STRANGER);
        vm.prank(STRANGER);
        registry.removeKmsConfig(d);
    }

    // ------------------------------------------------------ KMS measurements

    function test_kmsMeasurement_add_remove() public {
        bytes memory m = measurement(0x21);
        bytes32 key = keccak256(m);
        assertFalse(registry.isKmsMeasurementAllowed(m), "initially absent");

        vm.expectEmit(true, true, true, true, address(registry));
        emit KmsRegistry.KmsMeasurementAdded(key, m);
        vm.prank(OWNER);
        registry.addKmsMeasurement(m);
        assertTrue(registry.isKmsMeasurementAllowed(m), "added");
        assertFalse(registry.isOsImageAllowed(m), "separate from os images");

        vm.expectRevert(KmsRegistry.AlreadyPresent.selector);
        vm.prank(OWNER);
        registry.addKmsMeasurement(m);

        vm.expectEmit(true, true, true, true, address(registry));
        emit KmsRegistry.KmsMeasurementRemoved(key, m);
        vm.prank(OWNER);
        registry.removeKmsMeasurement(m);
        assertFalse(registry.isKmsMeasurementAllowed(m), "removed");

        vm.expectRevert(KmsRegistry.NotPresent.selector);
        vm.prank(OWNER);
        registry.removeKmsMeasurement(m);
    }

    function test_kmsMeasurement_badLength() public {
        uint256[3] memory lens = [uint256(0), 47, 64];
        for (uint256 i = 0; i < lens.length; i++) {
            bytes memory m = bytesOfLength(lens[i]);
            vm.expectRevert(abi.encodeWithSelector(KmsRegistry.BadMeasurementLength.selector, lens[i]));
            vm.prank(OWNER);
            registry.addKmsMeasurement(m);
            vm.expectRevert(abi.encodeWithSelector(KmsRegistry.BadMeasurementLength.selector, lens[i]));
            vm.prank(OWNER);
            registry.removeKmsMeasurement(m);
            assertFalse(registry.isKmsMeasurementAllowed(m), "bad length never allowed");
        }
    }

    function test_kmsMeasurement_onlyOwner() public {
        bytes memory m = measurement(0x21);
        expectOwnable(STRANGER);
        vm.prank(STRANGER);
        registry.addKmsMeasurement(m);

        vm.prank(OWNER);
        registry.addKmsMeasurement(m);
        expectOwnable(STRANGER);
        vm.prank(STRANGER);
        registry.removeKmsMeasurement(m);
    }

    // ------------------------------------------------------------- KMS chips

    function test_kmsChip_add_remove() public {
        bytes memory c1 = chipId(0x31);
        bytes memory c2 = chipId(0x32);

        vm.expectEmit(true, true, true, true, address(registry));
        emit KmsRegistry.KmsChipAdded(keccak256(c1), c1);
        vm.prank(OWNER);
        registry.addKmsChip(c1);
        assertEq(registry.kmsChipCount(), 1, "count 1");
        assertTrue(registry.isKmsChipListed(c1), "c1 listed");
        assertFalse(registry.isKmsChipListed(c2), "c2 not listed");

        vm.prank(OWNER);
        registry.addKmsChip(c2);
        assertEq(registry.kmsChipCount(), 2, "count 2");

        vm.expectRevert(KmsRegistry.AlreadyPresent.selector);
        vm.prank(OWNER);
        registry.addKmsChip(c1);
        assertEq(registry.kmsChipCount(), 2, "count unchanged");

        vm.expectEmit(true, true, true, true, address(registry));
        emit KmsRegistry.KmsChipRemoved(keccak256(c1), c1);
        vm.prank(OWNER);
        registry.removeKmsChip(c1);
        assertEq(registry.kmsChipCount(), 1, "count after remove");
        assertFalse(registry.isKmsChipListed(c1), "c1 removed");

        vm.expectRevert(KmsRegistry.NotPresent.selector);
        vm.prank(OWNER);
        registry.removeKmsChip(c1);
        assertEq(registry.kmsChipCount(), 1, "count unchanged 2");

        vm.prank(OWNER);
        registry.removeKmsChip(c2);
        assertEq(registry.kmsChipCount(), 0, "count 0");
    }

    function test_kmsChip_badLength() public {
        uint256[4] memory lens = [uint256(0), 48, 63, 65];
        for (uint256 i = 0; i < lens.length; i++) {
            bytes memory c = bytesOfLength(lens[i]);
            vm.expectRevert(abi.encodeWithSelector(KmsRegistry.BadChipIdLength.selector, lens[i]));
            vm.prank(OWNER);
            registry.addKmsChip(c);
            vm.expectRevert(abi.encodeWithSelector(KmsRegistry.BadChipIdLength.selector, lens[i]));
            vm.prank(OWNER);
            registry.removeKmsChip(c);
            assertFalse(registry.isKmsChipListed(c), "bad length never listed");
        }
    }

    function test_kmsChip_onlyOwner() public {
        bytes memory c = chipId(0x31);
        expectOwnable(STRANGER);
        vm.prank(STRANGER);
        registry.addKmsChip(c);

        vm.prank(OWNER);
        registry.addKmsChip(c);
        expectOwnable(STRANGER);
        vm.prank(STRANGER);
        registry.removeKmsChip(c);
    }

    // --------------------------------------------------------------- min TCB

    function test_setMinTcb_perProduct() public {
        TcbVersion memory milan = tcb(3, 0, 8, 115, 0);
        TcbVersion memory genoa = tcb(7, 0, 14, 72, 0);
        TcbVersion memory turin = tcb(1, 0, 1, 77, 1);

        vm.expectEmit(true, true, true, true, address(registry));
        emit KmsRegistry.MinTcbSet(0, milan);
        vm.prank(OWNER);
        registry.setMinTcb(0, milan);

        vm.expectEmit(true, true, true, true, address(registry));
        emit KmsRegistry.MinTcbSet(1, genoa);
        vm.prank(OWNER);
        registry.setMinTcb(1, genoa);

        vm.expectEmit(true, true, true, true, address(registry));
        emit KmsRegistry.MinTcbSet(2, turin);
        vm.prank(OWNER);
        registry.setMinTcb(2, turin);

        assertTrue(tcbEq(registry.minTcb(0), milan), "milan");
        assertTrue(tcbEq(registry.minTcb(1), genoa), "genoa");
        assertTrue(tcbEq(registry.minTcb(2), turin), "turin");

        // overwrite one product, the others are untouched
        vm.prank(OWNER);
        registry.setMinTcb(1, tcb(0, 0, 0, 0, 0));
        assertTrue(tcbEq(registry.minTcb(1), tcb(0, 0, 0, 0, 0)), "genoa reset");
        assertTrue(tcbEq(registry.minTcb(0), milan), "milan kept");
        assertTrue(tcbEq(registry.minTcb(2), turin), "turin kept");
    }

    function test_minTcb_defaultsToZero() public view {
        for (uint8 p = 0; p <= 2; p++) {
            assertTrue(tcbEq(registry.minTcb(p), tcb(0, 0, 0, 0, 0)), "zero");
        }
    }

    function test_setMinTcb_unknownProduct() public {
        uint8[3] memory bad = [uint8(3), 4, 255];
        for (uint256 i = 0; i < bad.length; i++) {
            vm.expectRevert(abi.encodeWithSelector(KmsRegistry.UnknownProduct.selector, bad[i]));
            vm.prank(OWNER);
            registry.setMinTcb(bad[i], tcb(1, 1, 1, 1, 0));
            vm.expectRevert(abi.encodeWithSelector(KmsRegistry.UnknownProduct.selector, bad[i]));
            registry.minTcb(bad[i]);
        }
    }

    function test_setMinTcb_fmcOnlyOnTurin() public {
        vm.expectRevert(abi.encodeWithSelector(KmsRegistry.FmcNotSupported.selector, uint8(0)));
        vm.prank(OWNER);
        registry.setMinTcb(0, tcb(1, 1, 1, 1, 1));
        vm.expectRevert(abi.encodeWithSelector(KmsRegistry.FmcNotSupported.selector, uint8(1)));
        vm.prank(OWNER);
        registry.setMinTcb(1, tcb(1, 1, 1, 1, 9));
        vm.prank(OWNER);
        registry.setMinTcb(2, tcb(1, 1, 1, 1, 9));
        assertEq(registry.minTcb(2).fmc, 9, "turin fmc");
    }

    function test_setMinTcb_onlyOwner() public {
        expectOwnable(STRANGER);
        vm.prank(STRANGER);
        registry.setMinTcb(0, tcb(1, 1, 1, 1, 0));
    }

    // ------------------------------------------------------------------ apps

    function test_registerApp() public {
        bytes32 salt = keccak256("my app");
        address predicted = registry.predictAppAddress(APP_OWNER, salt);
        assertFalse(registry.isAppRegistered(predicted), "not yet registered");

        vm.expectEmit(true, true, true, true, address(registry));
        emit KmsRegistry.AppRegistered(predicted, APP_OWNER, salt);
        vm.prank(APP_OWNER);
        address app = registry.registerApp(salt);

        assertEq(app, predicted, "predicted address");
        assertTrue(app.code.length > 0, "clone deployed");
        assertTrue(registry.isAppRegistered(app), "registered");
        assertEq(registry.appCount(), 1, "appCount");
        AppAuth a = AppAuth(app);
        assertEq(a.owner(), APP_OWNER, "app owner");
        assertEq(a.registry(), address(registry), "app registry");
        assertTrue(a.enabled(), "enabled");
        assertFalse(a.allowAnyDevice(), "allowAnyDevice");
        // EIP-1167 minimal proxy pointing at the implementation
        assertEq(
            app.code,
            abi.encodePacked(
                hex"363d3d373d3d3d363d73",
                registry.appAuthImplementation(),
                hex"5af43d82803e903d91602b57fd5bf3"
            ),
            "eip-1167 code"
        );

        // the clone cannot be re-initialized
        vm.expectRevert(Initializable.InvalidInitialization.selector);
        a.initialize(STRANGER, STRANGER);
    }

    function test_registerApp_determinism() public {
        bytes32 salt = bytes32(uint256(42));
        // predicted address depends only on (owner, salt) and the implementation
        address p1 = registry.predictAppAddress(APP_OWNER, salt);
        address p2 = registry.predictAppAddress(STRANGER, salt);
        address p3 = registry.predictAppAddress(APP_OWNER, bytes32(uint256(43)));
        assertNotEq(p1, p2, "owner matters");
        assertNotEq(p1, p3, "salt matters");
        assertEq(registry.predictAppAddress(APP_OWNER, salt), p1, "stable");

        vm.prank(STRANGER);
        assertEq(registry.registerApp(salt), p2, "stranger app");
        vm.prank(APP_OWNER);
        assertEq(registry.registerApp(salt), p1, "owner app");
        vm.prank(APP_OWNER);
        assertEq(registry.registerApp(bytes32(uint256(43))), p3, "owner app 2");
        assertEq(registry.appCount(), 3, "appCount");
        assertEq(AppAuth(p2).owner(), STRANGER, "p2 owner");

        // same (owner, salt) again
        vm.expectRevert(KmsRegistry.AlreadyPresent.selector);
        vm.prank(APP_OWNER);
        registry.registerApp(salt);
        assertEq(registry.appCount(), 3, "appCount unchanged");
    }

    function test_registerApp_anyoneMay() public {
        for (uint160 i = 1; i <= 3; i++) {
            address who = address(0x1000 + i);
            vm.prank(who);
            address app = registry.registerApp(bytes32(0));
            assertEq(AppAuth(app).owner(), who, "owner");
            assertTrue(registry.isAppRegistered(app), "registered");
        }
        assertEq(registry.appCount(), 3, "appCount");
    }

    function test_isAppRegistered_false() public view {
        assertFalse(registry.isAppRegistered(address(0)), "zero");
        assertFalse(registry.isAppRegistered(registry.appAuthImplementation()), "implementation");
        assertFalse(registry.isAppRegistered(address(registry)), "registry");
    }

    // -------------------------------------------------------------- upgrades

    function _populate() internal returns (address app) {
        vm.startPrank(OWNER);
        registry.setKmsInfo(address(0x5157), hex"c0ffee");
        registry.bumpKeyEpoch();
        registry.bumpKeyEpoch();
        registry.addOsImage(measurement(0x11));
        registry.addKmsMeasurement(measurement(0x21));
        registry.addKmsChip(chipId(0x31));
        registry.setMinTcb(2, tcb(1, 2, 3, 4, 5));
        vm.stopPrank();
        vm.prank(APP_OWNER);
        app = registry.registerApp(bytes32(uint256(7)));
    }

    function _assertPopulated(address app) internal view {
        (address root, bytes memory tls, uint32 epoch) = registry.kmsInfo();
        assertEq(root, address(0x5157), "root");
        assertEq(tls, hex"c0ffee", "tls");
        assertEq(epoch, 2, "epoch");
        assertTrue(registry.isOsImageAllowed(measurement(0x11)), "os image");
        assertTrue(registry.isKmsMeasurementAllowed(measurement(0x21)), "kms measurement");
        assertTrue(registry.isKmsChipListed(chipId(0x31)), "kms chip");
        assertEq(registry.kmsChipCount(), 1, "kms chip count");
        assertTrue(tcbEq(registry.minTcb(2), tcb(1, 2, 3, 4, 5)), "min tcb");
        assertTrue(registry.isAppRegistered(app), "app");
        assertEq(registry.appCount(), 1, "app count");
        assertEq(registry.owner(), OWNER, "owner");
    }

    function test_upgrade_keepsStorage() public {
        address app = _populate();
        KmsRegistryV2 v2 = new KmsRegistryV2();

        vm.expectEmit(true, true, true, true, address(registry));
        emit IERC1967.Upgraded(address(v2));
        vm.prank(OWNER);
        registry.upgradeToAndCall(address(v2), "");

        bytes32 implSlot = vm.load(address(registry), ERC1967Utils.IMPLEMENTATION_SLOT);
        assertEq(address(uint160(uint256(implSlot))), address(v2), "implementation");
        assertEq(KmsRegistryV2(address(registry)).version(), "2", "v2 active");
        _assertPopulated(app);

        // still fully functional after the upgrade
        vm.prank(OWNER);
        registry.bumpKeyEpoch();
        assertEq(registry.keyEpoch(), 3, "epoch after upgrade");
        // old apps remain registered; new apps use the new implementation's AppAuth
        vm.prank(APP_OWNER);
        address app2 = registry.registerApp(bytes32(uint256(8)));
        assertEq(AppAuth(app2).owner(), APP_OWNER, "new app owner");
        assertEq(registry.appCount(), 2, "app count");
    }

    /// @dev A registry deployed before storage version 2 keeps what its state meant when it is
    ///      upgraded with {KmsRegistry.migrateToV2}: its empty chip list allowed any chip, its
    ///      products without a minimum had none. Governance can then close both.
    function test_upgradeFromV1_keepsMeaning_thenGovernanceCloses() public {
        KmsRegistryV1 v1Impl = new KmsRegistryV1();
        KmsRegistryV1 v1 = KmsRegistryV1(
            address(new ERC1967Proxy(address(v1Impl), abi.encodeCall(KmsRegistryV1.initialize, (OWNER))))
        );
        bytes memory kmsImage = measurement(0x21);
        bytes32 config = bytes32(uint256(0xc0f1));
        vm.startPrank(OWNER);
        v1.addKmsMeasurement(kmsImage);
        v1.addKmsConfig(config);
        v1.setMinTcb(0, tcb(3, 0, 8, 115, 0));
        vm.stopPrank();
        // Genoa (product 1) never got a minimum; the chip list is empty.
        BootInfo memory info = bootInfo(kmsImage, chipId(0x31), address(0), bytes32(0), 1, tcb(0, 0, 0, 0, 0));
        (bool ok,) = v1.isKmsAllowed(info, config);
        assertTrue(ok, "v1: any chip, no floor for genoa");

        KmsRegistry impl = new KmsRegistry();
        // Only the owner may migrate (best as part of the upgrade).
        vm.prank(STRANGER);
        vm.expectRevert();
        v1.upgradeToAndCall(address(impl), abi.encodeCall(KmsRegistry.migrateToV2, ()));
        vm.expectEmit(true, true, true, true, address(v1));
        emit KmsRegistry.AnyKmsChipAllowedSet(true);
        vm.prank(OWNER);
        v1.upgradeToAndCall(address(impl), abi.encodeCall(KmsRegistry.migrateToV2, ()));
        KmsRegistry upgraded = KmsRegistry(address(v1));

        assertTrue(upgraded.anyKmsChipAllowed(), "empty list kept its meaning");
        for (uint8 p = 0; p <= 2; p++) {
            assertTrue(upgraded.isMinTcbSet(p), "every product keeps its (possibly zero) floor");
        }
        assertTrue(tcbEq(upgraded.minTcb(0), tcb(3, 0, 8, 115, 0)), "milan minimum kept");
        (bool allowed, string memory reason) = upgraded.isKmsAllowed(info, config);
        assertTrue(allowed, reason);

        // The migration runs once; initialize cannot run again either.
        vm.prank(OWNER);
        vm.expectRevert(Initializable.InvalidInitialization.selector);
        upgraded.migrateToV2();
        vm.expectRevert(Initializable.InvalidInitialization.selector);
        upgraded.initialize(STRANGER);

        // Governance closes the chip list: the chip is no longer allowed.
        vm.prank(OWNER);
        upgraded.setAnyKmsChipAllowed(false);
        (allowed, reason) = upgraded.isKmsAllowed(info, config);
        assertFalse(allowed, "chip allowed after closing");
        assertEq(reason, "kms chip not allowed", "reason");
    }

    /// @dev An upgrade that does not migrate in the same call leaves no window to take the
    ///      registry over with initialize; the owner migrates afterwards.
    function test_upgradeFromV1_withoutMigration_cannotBeInitializedByAnyone() public {
        KmsRegistryV1 v1Impl = new KmsRegistryV1();
        KmsRegistryV1 v1 = KmsRegistryV1(
            address(new ERC1967Proxy(address(v1Impl), abi.encodeCall(KmsRegistryV1.initialize, (OWNER))))
        );
        KmsRegistry impl = new KmsRegistry();
        vm.prank(OWNER);
        v1.upgradeToAndCall(address(impl), "");
        KmsRegistry upgraded = KmsRegistry(address(v1));
        vm.prank(STRANGER);
        vm.expectRevert(Initializable.InvalidInitialization.selector);
        upgraded.initialize(STRANGER);
        assertEq(upgraded.owner(), OWNER, "owner kept");
        vm.prank(STRANGER);
        vm.expectRevert();
        upgraded.migrateToV2();
        vm.prank(OWNER);
        upgraded.migrateToV2();
        assertTrue(upgraded.anyKmsChipAllowed(), "migrated");
    }

    /// @dev A v1 registry that had listed chips keeps listing only those.
    function test_upgradeFromV1_withChips_staysClosed() public {
        KmsRegistryV1 v1Impl = new KmsRegistryV1();
        KmsRegistryV1 v1 = KmsRegistryV1(
            address(new ERC1967Proxy(address(v1Impl), abi.encodeCall(KmsRegistryV1.initialize, (OWNER))))
        );
        vm.startPrank(OWNER);
        v1.addKmsChip(chipId(0x31));
        v1.upgradeToAndCall(address(new KmsRegistry()), abi.encodeCall(KmsRegistry.migrateToV2, ()));
        vm.stopPrank();
        assertFalse(KmsRegistry(address(v1)).anyKmsChipAllowed(), "a listed chip keeps the list closed");
    }

    function test_freshDeployment_isAtVersion2() public {
        assertFalse(registry.anyKmsChipAllowed(), "no chip by default");
        assertFalse(registry.isMinTcbSet(0), "no product by default");
        vm.prank(OWNER);
        vm.expectRevert(Initializable.InvalidInitialization.selector);
        registry.migrateToV2();
    }

    function test_upgrade_onlyOwner() public {
        KmsRegistryV2 v2 = new KmsRegistryV2();
        expectOwnable(STRANGER);
        vm.prank(STRANGER);
        registry.upgradeToAndCall(address(v2), "");
    }

    function test_upgrade_cannotReinitialize() public {
        KmsRegistryV2 v2 = new KmsRegistryV2();
        vm.expectRevert(Initializable.InvalidInitialization.selector);
        vm.prank(OWNER);
        registry.upgradeToAndCall(address(v2), abi.encodeCall(KmsRegistry.initialize, (STRANGER)));
    }

    function test_disableUpgrades() public {
        address app = _populate();
        assertFalse(registry.upgradesDisabled(), "initially enabled");

        vm.expectEmit(true, true, true, true, address(registry));
        emit KmsRegistry.UpgradesDisabled();
        vm.prank(OWNER);
        registry.disableUpgrades();
        assertTrue(registry.upgradesDisabled(), "disabled");

        KmsRegistryV2 v2 = new KmsRegistryV2();
        vm.expectRevert(KmsRegistry.UpgradesAreDisabled.selector);
        vm.prank(OWNER);
        registry.upgradeToAndCall(address(v2), "");

        // a second disable is rejected, and nothing changed
        vm.expectRevert(KmsRegistry.UpgradesAreDisabled.selector);
        vm.prank(OWNER);
        registry.disableUpgrades();
        bytes32 implSlot = vm.load(address(registry), ERC1967Utils.IMPLEMENTATION_SLOT);
        assertEq(address(uint160(uint256(implSlot))), address(registryImpl), "implementation unchanged");
        _assertPopulated(app);

        // a new owner cannot re-enable them either
        vm.prank(OWNER);
        registry.transferOwnership(STRANGER);
        vm.prank(STRANGER);
        registry.acceptOwnership();
        vm.expectRevert(KmsRegistry.UpgradesAreDisabled.selector);
        vm.prank(STRANGER);
        registry.upgradeToAndCall(address(v2), "");
        // and non-owners still get the access-control error first
        expectOwnable(OWNER);
        vm.prank(OWNER);
        registry.upgradeToAndCall(address(v2), "");
    }

    function test_disableUpgrades_survivesUpgradeHistory() public {
        // upgrade once, then disable: the V2 implementation honours the flag too
        KmsRegistryV2 v2 = new KmsRegistryV2();
        vm.prank(OWNER);
        registry.upgradeToAndCall(address(v2), "");
        vm.prank(OWNER);
        registry.disableUpgrades();
        KmsRegistry v3 = new KmsRegistry();
        vm.expectRevert(KmsRegistry.UpgradesAreDisabled.selector);
        vm.prank(OWNER);
        registry.upgradeToAndCall(address(v3), "");
        assertEq(KmsRegistryV2(address(registry)).version(), "2", "still v2");
    }

    function test_disableUpgrades_onlyOwner() public {
        expectOwnable(STRANGER);
        vm.prank(STRANGER);
        registry.disableUpgrades();
        assertFalse(registry.upgradesDisabled(), "still enabled");
    }

    function test_upgradeToAndCall_onImplementation_reverts() public {
        KmsRegistryV2 v2 = new KmsRegistryV2();
        vm.expectRevert(abi.encodeWithSignature("UUPSUnauthorizedCallContext()"));
        vm.prank(OWNER);
        registryImpl.upgradeToAndCall(address(v2), "");
    }

    // ------------------------------------------------------ two-step ownership

    function test_ownership_twoStep() public {
        vm.expectEmit(true, true, true, true, address(registry));
        emit Ownable2StepUpgradeable.OwnershipTransferStarted(OWNER, APP_OWNER);
        vm.prank(OWNER);
        registry.transferOwnership(APP_OWNER);
        assertEq(registry.owner(), OWNER, "owner unchanged until accepted");
        assertEq(registry.pendingOwner(), APP_OWNER, "pending");

        // the pending owner has no rights yet
        expectOwnable(APP_OWNER);
        vm.prank(APP_OWNER);
        registry.bumpKeyEpoch();

        // only the pending owner may accept
        expectOwnable(STRANGER);
        vm.prank(STRANGER);
        registry.acceptOwnership();

        vm.expectEmit(true, true, true, true, address(registry));
        emit OwnableUpgradeable.OwnershipTransferred(OWNER, APP_OWNER);
        vm.prank(APP_OWNER);
        registry.acceptOwnership();
        assertEq(registry.owner(), APP_OWNER, "new owner");
        assertEq(registry.pendingOwner(), address(0), "pending cleared");

        // old owner lost its rights, new owner has them
        expectOwnable(OWNER);
        vm.prank(OWNER);
        registry.bumpKeyEpoch();
        vm.prank(APP_OWNER);
        registry.bumpKeyEpoch();
        assertEq(registry.keyEpoch(), 1, "bumped by new owner");
    }

    function test_ownership_transfer_onlyOwner() public {
        expectOwnable(STRANGER);
        vm.prank(STRANGER);
        registry.transferOwnership(STRANGER);
    }

    function test_ownership_renounce() public {
        vm.prank(OWNER);
        registry.renounceOwnership();
        assertEq(registry.owner(), address(0), "renounced");
        expectOwnable(OWNER);
        vm.prank(OWNER);
        registry.bumpKeyEpoch();
    }
}
