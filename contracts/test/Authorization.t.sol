// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {Fixture} from "./utils/Fixture.sol";
import {KmsRegistry} from "../src/KmsRegistry.sol";
import {AppAuth} from "../src/AppAuth.sol";
import {BootInfo, TcbVersion} from "../src/SnpTypes.sol";

/// @notice Truth tables of KmsRegistry.isAppAllowed / isKmsAllowed, and TCB comparison per product.
contract AuthorizationTest is Fixture {
    bytes internal osImage;
    bytes internal kmsImage;
    bytes internal chip;
    bytes32 internal constant COMPOSE = keccak256("compose.yaml");
    bytes32 internal constant KMS_CONFIG = keccak256("kms security config");
    AppAuth internal app;

    // minimums used by the fixture (all components non-zero so "below" is testable)
    TcbVersion internal minMilan;
    TcbVersion internal minGenoa;
    TcbVersion internal minTurin;

    function setUp() public {
        registry = deployRegistry(OWNER);
        osImage = measurement(0x11);
        kmsImage = measurement(0x21);
        chip = chipId(0x31);
        minMilan = tcb(3, 2, 8, 115, 0);
        minGenoa = tcb(7, 1, 14, 72, 0);
        minTurin = tcb(1, 3, 1, 77, 2);

        vm.startPrank(OWNER);
        registry.addOsImage(osImage);
        registry.addKmsMeasurement(kmsImage);
        registry.addKmsConfig(KMS_CONFIG);
        registry.setMinTcb(0, minMilan);
        registry.setMinTcb(1, minGenoa);
        registry.setMinTcb(2, minTurin);
        registry.addKmsChip(chip);
        vm.stopPrank();

        vm.startPrank(APP_OWNER);
        app = AppAuth(registry.registerApp(bytes32(0)));
        app.addComposeHash(COMPOSE);
        app.addDevice(keccak256(chip));
        vm.stopPrank();
    }

    // ---------------------------------------------------------------- helpers

    function minFor(uint8 product) internal view returns (TcbVersion memory) {
        if (product == 0) return minMilan;
        if (product == 1) return minGenoa;
        return minTurin;
    }

    /// @dev A BootInfo that isAppAllowed accepts (Genoa, TCB exactly at the minimum).
    function goodApp() internal view returns (BootInfo memory) {
        return bootInfo(osImage, chip, address(app), COMPOSE, 1, minGenoa);
    }

    /// @dev A BootInfo that isKmsAllowed accepts (app fields deliberately junk: they are ignored).
    function goodKms() internal view returns (BootInfo memory) {
        return bootInfo(kmsImage, chip, address(0xdead), bytes32(uint256(1)), 1, minGenoa);
    }

    function expectApp(BootInfo memory info, bool wantAllowed, string memory wantReason) internal view {
        (bool allowed, string memory reason) = registry.isAppAllowed(info);
        assertEq(reason, wantReason, "isAppAllowed reason");
        assertEq(allowed, wantAllowed, "isAppAllowed allowed");
    }

    function expectKms(BootInfo memory info, bool wantAllowed, string memory wantReason) internal view {
        expectKmsWith(info, KMS_CONFIG, wantAllowed, wantReason);
    }

    function expectKmsWith(BootInfo memory info, bytes32 config, bool wantAllowed, string memory wantReason)
        internal
        view
    {
        (bool allowed, string memory reason) = registry.isKmsAllowed(info, config);
        assertEq(reason, wantReason, "isKmsAllowed reason");
        assertEq(allowed, wantAllowed, "isKmsAllowed allowed");
    }

    // ======================================================== isAppAllowed

    function test_app_allowed() public view {
        expectApp(goodApp(), true, "");
    }

    function test_app_allowed_everyProduct() public view {
        for (uint8 p = 0; p <= 2; p++) {
            BootInfo memory info = goodApp();
            info.product = p;
            info.reportedTcb = minFor(p);
            info.committedTcb = minFor(p);
            info.launchTcb = minFor(p);
            expectApp(info, true, "");
        }
    }

    function test_app_hostData_guestSvn_ignored() public view {
        BootInfo memory info = goodApp();
        info.hostData = bytes32(type(uint256).max);
        info.guestSvn = type(uint32).max;
        expectApp(info, true, "");
    }

    function test_app_unknownProduct() public view {
        uint8[3] memory bad = [uint8(3), 4, 255];
        for (uint256 i = 0; i < bad.length; i++) {
            BootInfo memory info = goodApp();
            info.product = bad[i];
            expectApp(info, false, "unknown product");
        }
    }

    function test_app_badMeasurementLength() public view {
        uint256[4] memory lens = [uint256(0), 32, 47, 49];
        for (uint256 i = 0; i < lens.length; i++) {
            BootInfo memory info = goodApp();
            info.measurement = bytesOfLength(lens[i]);
            expectApp(info, false, "bad measurement length");
        }
    }

    function test_app_badChipIdLength() public view {
        uint256[4] memory lens = [uint256(1), 48, 63, 65];
        for (uint256 i = 0; i < lens.length; i++) {
            BootInfo memory info = goodApp();
            info.chipId = bytesOfLength(lens[i]);
            expectApp(info, false, "bad chip id length");
        }
    }

    function test_app_osImageNotAllowed() public {
        BootInfo memory info = goodApp();
        info.measurement = measurement(0x12);
        expectApp(info, false, "os image not allowed");
        // a KMS measurement is not an OS image
        info.measurement = kmsImage;
        expectApp(info, false, "os image not allowed");
        // removal takes effect
        vm.prank(OWNER);
        registry.removeOsImage(osImage);
        expectApp(goodApp(), false, "os image not allowed");
    }

    function test_app_tcbBelowMinimum_eachTcbField() public view {
        TcbVersion memory low = tcb(6, 1, 14, 72, 0); // bootloader below Genoa minimum
        BootInfo memory info = goodApp();
        info.reportedTcb = low;
        expectApp(info, false, "tcb below minimum");
        info = goodApp();
        info.committedTcb = low;
        expectApp(info, false, "tcb below minimum");
        info = goodApp();
        info.launchTcb = low;
        expectApp(info, false, "tcb below minimum");
    }

    function test_app_notRegistered() public {
        BootInfo memory info = goodApp();
        info.appId = address(0xdead);
        expectApp(info, false, "app not registered");
        info.appId = address(0);
        expectApp(info, false, "app not registered");
        info.appId = registry.appAuthImplementation();
        expectApp(info, false, "app not registered");

        // an AppAuth registered in another registry is not registered here
        KmsRegistry other = deployRegistry(OWNER);
        vm.prank(APP_OWNER);
        AppAuth foreign = AppAuth(other.registerApp(bytes32(0)));
        vm.prank(APP_OWNER);
        foreign.addComposeHash(COMPOSE);
        vm.prank(APP_OWNER);
        foreign.setAllowAnyDevice(true);
        info.appId = address(foreign);
        expectApp(info, false, "app not registered");
    }

    function test_app_disabled() public {
        vm.prank(APP_OWNER);
        app.disable();
        expectApp(goodApp(), false, "app disabled");
        vm.prank(APP_OWNER);
        app.enable();
        expectApp(goodApp(), true, "");
    }

    function test_app_composeHashNotAllowed() public {
        BootInfo memory info = goodApp();
        info.composeHash = keccak256("other compose");
        expectApp(info, false, "compose hash not allowed");
        vm.prank(APP_OWNER);
        app.removeComposeHash(COMPOSE);
        expectApp(goodApp(), false, "compose hash not allowed");
    }

    function test_app_deviceNotAllowed() public {
        BootInfo memory info = goodApp();
        info.chipId = chipId(0x32);
        expectApp(info, false, "device not allowed");

        vm.prank(APP_OWNER);
        app.setAllowAnyDevice(true);
        expectApp(info, true, "");

        vm.prank(APP_OWNER);
        app.setAllowAnyDevice(false);
        expectApp(info, false, "device not allowed");

        vm.prank(APP_OWNER);
        app.removeDevice(keccak256(chip));
        expectApp(goodApp(), false, "device not allowed");
    }

    /// @dev An empty chipId (VLEK-signed evidence, masked chip id) is on no device list, even
    ///      one holding keccak256 of the empty string; only allowAnyDevice admits it.
    function test_app_noDeviceIdentity() public {
        BootInfo memory info = goodApp();
        info.chipId = "";
        expectApp(info, false, "no device identity");
        vm.prank(APP_OWNER);
        app.addDevice(keccak256(""));
        expectApp(info, false, "no device identity");
        vm.prank(APP_OWNER);
        app.setAllowAnyDevice(true);
        expectApp(info, true, "");
    }

    /// @dev Each failing check masks the ones after it, in the documented order.
    function test_app_checkOrder() public {
        vm.prank(APP_OWNER);
        app.disable();
        BootInfo memory info = goodApp();
        info.chipId = chipId(0x32); // device not allowed
        info.composeHash = bytes32(0); // compose hash not allowed
        expectApp(info, false, "app disabled");
        info.appId = address(0xdead);
        expectApp(info, false, "app not registered");
        info.launchTcb = tcb(0, 0, 0, 0, 0);
        expectApp(info, false, "tcb below minimum");
        info.measurement = measurement(0x99);
        expectApp(info, false, "os image not allowed");
        info.chipId = bytesOfLength(10);
        expectApp(info, false, "bad chip id length");
        info.measurement = bytesOfLength(10);
        expectApp(info, false, "bad measurement length");
        info.product = 3;
        expectApp(info, false, "unknown product");

        // app disabled is checked before compose hash / device
        vm.prank(APP_OWNER);
        app.enable();
        info = goodApp();
        info.chipId = chipId(0x32);
        info.composeHash = bytes32(0);
        expectApp(info, false, "compose hash not allowed");
    }

    // ======================================================== isKmsAllowed

    function test_kms_allowed() public view {
        expectKms(goodKms(), true, "");
    }

    function test_kms_allowed_everyProduct() public view {
        for (uint8 p = 0; p <= 2; p++) {
            BootInfo memory info = goodKms();
            info.product = p;
            info.reportedTcb = minFor(p);
            info.committedTcb = minFor(p);
            info.launchTcb = minFor(p);
            expectKms(info, true, "");
        }
    }

    function test_kms_appFieldsIgnored() public view {
        BootInfo memory info = goodKms();
        info.appId = address(0);
        info.composeHash = bytes32(0);
        expectKms(info, true, "");
        info.appId = address(app);
        info.composeHash = COMPOSE;
        expectKms(info, true, "");
    }

    function test_kms_unknownProduct() public view {
        BootInfo memory info = goodKms();
        info.product = 3;
        expectKms(info, false, "unknown product");
        info.product = 255;
        expectKms(info, false, "unknown product");
    }

    function test_kms_badMeasurementLength() public view {
        BootInfo memory info = goodKms();
        info.measurement = bytesOfLength(47);
        expectKms(info, false, "bad measurement length");
        info.measurement = bytesOfLength(0);
        expectKms(info, false, "bad measurement length");
    }

    function test_kms_badChipIdLength() public view {
        BootInfo memory info = goodKms();
        info.chipId = bytesOfLength(63);
        expectKms(info, false, "bad chip id length");
        info.chipId = bytesOfLength(1);
        expectKms(info, false, "bad chip id length");
    }

    function test_kms_measurementNotAllowed() public {
        BootInfo memory info = goodKms();
        info.measurement = osImage; // an app OS image is not a KMS image
        expectKms(info, false, "kms measurement not allowed");
        vm.prank(OWNER);
        registry.removeKmsMeasurement(kmsImage);
        expectKms(goodKms(), false, "kms measurement not allowed");
    }

    function test_kms_configNotAllowed() public {
        expectKmsWith(goodKms(), keccak256("edited by the host"), false, "kms config not allowed");
        expectKmsWith(goodKms(), bytes32(0), false, "kms config not allowed");
        vm.prank(OWNER);
        registry.removeKmsConfig(KMS_CONFIG);
        expectKms(goodKms(), false, "kms config not allowed");
        vm.prank(OWNER);
        registry.addKmsConfig(KMS_CONFIG);
        expectKms(goodKms(), true, "");
    }

    function test_kms_tcbBelowMinimum() public view {
        BootInfo memory info = goodKms();
        info.committedTcb = tcb(7, 1, 13, 72, 0);
        expectKms(info, false, "tcb below minimum");
    }

    function test_kms_chipList() public {
        BootInfo memory other = goodKms();
        other.chipId = chipId(0x77);
        expectKms(goodKms(), true, "");
        expectKms(other, false, "kms chip not allowed");

        vm.prank(OWNER);
        registry.addKmsChip(chipId(0x77));
        expectKms(other, true, "");

        // Removing every chip leaves no chip allowed, the removed ones included.
        vm.startPrank(OWNER);
        registry.removeKmsChip(chip);
        registry.removeKmsChip(chipId(0x77));
        vm.stopPrank();
        assertEq(registry.kmsChipCount(), 0, "empty list");
        expectKms(goodKms(), false, "kms chip not allowed");
        expectKms(other, false, "kms chip not allowed");
    }

    function test_kms_chip_addThenRemove_isNotAllowed() public {
        KmsRegistry fresh = deployRegistry(OWNER);
        vm.startPrank(OWNER);
        fresh.addKmsMeasurement(kmsImage);
        fresh.addKmsConfig(KMS_CONFIG);
        fresh.setMinTcb(1, minGenoa);
        fresh.addKmsChip(chip);
        fresh.removeKmsChip(chip);
        vm.stopPrank();
        (bool ok, string memory reason) = fresh.isKmsAllowed(goodKms(), KMS_CONFIG);
        assertFalse(ok, "removed chip allowed");
        assertEq(reason, "kms chip not allowed", "reason");
    }

    function test_kms_anyChip_isExplicit() public {
        BootInfo memory other = goodKms();
        other.chipId = chipId(0x77);
        assertFalse(registry.anyKmsChipAllowed(), "off by default");

        vm.expectEmit(true, true, true, true, address(registry));
        emit KmsRegistry.AnyKmsChipAllowedSet(true);
        vm.prank(OWNER);
        registry.setAnyKmsChipAllowed(true);
        assertTrue(registry.anyKmsChipAllowed(), "on");
        expectKms(other, true, "");

        vm.expectEmit(true, true, true, true, address(registry));
        emit KmsRegistry.AnyKmsChipAllowedSet(false);
        vm.prank(OWNER);
        registry.setAnyKmsChipAllowed(false);
        expectKms(other, false, "kms chip not allowed");
        expectKms(goodKms(), true, "");
    }

    /// @dev A node of no device identity (empty chipId: VLEK-signed evidence) is on no chip
    ///      list; only anyKmsChipAllowed admits it.
    function test_kms_noDeviceIdentity() public {
        BootInfo memory unbound = goodKms();
        unbound.chipId = "";
        expectKms(unbound, false, "kms chip not allowed");
        vm.prank(OWNER);
        registry.setAnyKmsChipAllowed(true);
        expectKms(unbound, true, "");
    }

    function test_kms_anyChip_onlyOwner() public {
        expectOwnable(STRANGER);
        vm.prank(STRANGER);
        registry.setAnyKmsChipAllowed(true);
    }

    function test_kms_checkOrder() public {
        vm.prank(OWNER);
        registry.removeKmsChip(chip);
        BootInfo memory info = goodKms();
        expectKms(info, false, "kms chip not allowed");
        info.reportedTcb = tcb(0, 0, 0, 0, 0);
        expectKms(info, false, "tcb below minimum");
        expectKmsWith(info, bytes32(0), false, "kms config not allowed");
        info.measurement = measurement(0x99);
        expectKms(info, false, "kms measurement not allowed");
        info.chipId = bytesOfLength(1);
        expectKms(info, false, "bad chip id length");
        info.measurement = bytesOfLength(1);
        expectKms(info, false, "bad measurement length");
        info.product = 7;
        expectKms(info, false, "unknown product");
    }

    // ===================================================== TCB comparisons

    /// @dev For each product and each component: one below the minimum fails, equal and above pass,
    ///      for both isAppAllowed and isKmsAllowed, in each of the three TCB fields.
    function test_tcb_componentwise_allProducts() public view {
        for (uint8 p = 0; p <= 2; p++) {
            TcbVersion memory min = minFor(p);
            uint256 components = p == 2 ? 5 : 4; // fmc only on Turin
            for (uint256 c = 0; c < components; c++) {
                for (uint256 field = 0; field < 3; field++) {
                    _checkTcb(p, min, c, field, -1, false);
                    _checkTcb(p, min, c, field, 0, true);
                    _checkTcb(p, min, c, field, 1, true);
                }
            }
        }
    }

    function _checkTcb(uint8 p, TcbVersion memory min, uint256 component, uint256 field, int8 delta, bool ok)
        internal
        view
    {
        TcbVersion memory t = tcb(min.bootloader, min.tee, min.snp, min.microcode, min.fmc);
        if (component == 0) t.bootloader = _adj(t.bootloader, delta);
        else if (component == 1) t.tee = _adj(t.tee, delta);
        else if (component == 2) t.snp = _adj(t.snp, delta);
        else if (component == 3) t.microcode = _adj(t.microcode, delta);
        else t.fmc = _adj(t.fmc, delta);

        BootInfo memory a = goodApp();
        BootInfo memory k = goodKms();
        a.product = p;
        k.product = p;
        TcbVersion memory good = minFor(p);
        a.reportedTcb = field == 0 ? t : good;
        a.committedTcb = field == 1 ? t : good;
        a.launchTcb = field == 2 ? t : good;
        k.reportedTcb = a.reportedTcb;
        k.committedTcb = a.committedTcb;
        k.launchTcb = a.launchTcb;
        string memory want = ok ? "" : "tcb below minimum";
        expectApp(a, ok, want);
        expectKms(k, ok, want);
    }

    /// @dev x + delta for delta in {-1, 0, 1} (the minimums used here are all in 1..254).
    function _adj(uint8 x, int8 delta) internal pure returns (uint8) {
        if (delta < 0) return x - 1;
        if (delta > 0) return x + 1;
        return x;
    }

    /// @dev Componentwise, not lexicographic: a higher bootloader does not compensate a lower snp.
    function test_tcb_notLexicographic() public view {
        BootInfo memory info = goodApp(); // Genoa min (7,1,14,72,0)
        info.reportedTcb = tcb(255, 1, 13, 72, 0);
        expectApp(info, false, "tcb below minimum");
        info.reportedTcb = tcb(7, 1, 255, 71, 0);
        expectApp(info, false, "tcb below minimum");
        info.reportedTcb = tcb(6, 255, 255, 255, 255);
        expectApp(info, false, "tcb below minimum");
        info.reportedTcb = tcb(255, 255, 255, 255, 255);
        expectApp(info, true, "");
    }

    /// @dev Turin: fmc is compared too. Milan/Genoa: minimum fmc is 0, so any reported fmc passes.
    function test_tcb_turinFmc() public view {
        BootInfo memory info = goodApp();
        info.product = 2;
        info.reportedTcb = minTurin;
        info.committedTcb = minTurin;
        info.launchTcb = minTurin;
        expectApp(info, true, "");
        info.launchTcb = tcb(minTurin.bootloader, minTurin.tee, minTurin.snp, minTurin.microcode, 1);
        expectApp(info, false, "tcb below minimum");
        info.launchTcb = tcb(minTurin.bootloader, minTurin.tee, minTurin.snp, minTurin.microcode, 0);
        expectApp(info, false, "tcb below minimum");
        info.launchTcb = tcb(minTurin.bootloader, minTurin.tee, minTurin.snp, minTurin.microcode, 3);
        expectApp(info, true, "");

        // Milan with the Turin numbers but fmc 0 is judged against Milan's own minimum
        info.product = 0;
        info.reportedTcb = minMilan;
        info.committedTcb = minMilan;
        info.launchTcb = minMilan;
        expectApp(info, true, "");
    }

    /// @dev Minimums are per product: a TCB fine for one product may be too low for another.
    function test_tcb_perProductMinimum() public view {
        BootInfo memory info = goodApp();
        TcbVersion memory t = minGenoa; // (7,1,14,72,0)
        info.reportedTcb = t;
        info.committedTcb = t;
        info.launchTcb = t;
        info.product = 1;
        expectApp(info, true, "");
        info.product = 0; // Milan min (3,2,8,115,0): tee and microcode too low
        expectApp(info, false, "tcb below minimum");
        info.product = 2; // Turin min (1,3,1,77,2)
        expectApp(info, false, "tcb below minimum");
    }

    /// @dev A product governance set no minimum for is refused, for apps and KMS nodes alike,
    ///      until governance sets one (an all-zero minimum accepts any TCB, explicitly).
    function test_tcb_unsetMinimumRefuses() public {
        KmsRegistry fresh = deployRegistry(OWNER);
        vm.startPrank(OWNER);
        fresh.addOsImage(osImage);
        fresh.addKmsMeasurement(kmsImage);
        fresh.addKmsConfig(KMS_CONFIG);
        fresh.setAnyKmsChipAllowed(true);
        vm.stopPrank();
        BootInfo memory info = goodKms();
        info.reportedTcb = tcb(0, 0, 0, 0, 0);
        info.committedTcb = tcb(0, 0, 0, 0, 0);
        info.launchTcb = tcb(0, 0, 0, 0, 0);
        BootInfo memory appInfo = bootInfo(osImage, chip, address(app), COMPOSE, 1, tcb(0, 0, 0, 0, 0));
        for (uint8 p = 0; p <= 2; p++) {
            info.product = p;
            appInfo.product = p;
            assertFalse(fresh.isMinTcbSet(p), "not set");
            (bool ok, string memory reason) = fresh.isKmsAllowed(info, KMS_CONFIG);
            assertFalse(ok, "kms allowed without a minimum");
            assertEq(reason, "no minimum tcb for product", "kms reason");
            (ok, reason) = fresh.isAppAllowed(appInfo);
            assertFalse(ok, "app allowed without a minimum");
            assertEq(reason, "no minimum tcb for product", "app reason");

            vm.expectEmit(true, true, true, true, address(fresh));
            emit KmsRegistry.MinTcbSet(p, tcb(0, 0, 0, 0, 0));
            vm.prank(OWNER);
            fresh.setMinTcb(p, tcb(0, 0, 0, 0, 0));
            assertTrue(fresh.isMinTcbSet(p), "set");
            (ok, reason) = fresh.isKmsAllowed(info, KMS_CONFIG);
            assertTrue(ok, "an explicit zero minimum accepts any TCB");
            assertEq(reason, "", "reason");
        }
        // One product's minimum says nothing about the others.
        KmsRegistry milanOnly = deployRegistry(OWNER);
        vm.startPrank(OWNER);
        milanOnly.addKmsMeasurement(kmsImage);
        milanOnly.addKmsConfig(KMS_CONFIG);
        milanOnly.setAnyKmsChipAllowed(true);
        milanOnly.setMinTcb(0, minMilan);
        vm.stopPrank();
        BootInfo memory genoa = goodKms();
        genoa.product = 1;
        (bool allowed, string memory why) = milanOnly.isKmsAllowed(genoa, KMS_CONFIG);
        assertFalse(allowed, "genoa allowed by milan's minimum");
        assertEq(why, "no minimum tcb for product", "genoa reason");
    }
}
