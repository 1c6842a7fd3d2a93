// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {Fixture} from "./utils/Fixture.sol";
import {KmsRegistry} from "../src/KmsRegistry.sol";
import {AppKeyLib} from "../src/AppKeyLib.sol";

/// @notice The threshold mode's on-chain parts: the share set with its events, re-sharing that
///         keeps the group key, and t-of-n app key signatures (issue 18).
contract ThresholdTest is Fixture {
    address internal constant APP = address(0xA991D);
    address internal constant APP_SIGNER = address(0x51C4E7);
    bytes internal constant GROUP_KEY =
        hex"02a0434d9e47f3c86235477c7b1ae6ae5d3442d49b1943c2b752a68e2a47e247c7";

    event ThresholdGroupSet(uint32 indexed shareEpoch, uint16 threshold, bytes groupKey);
    event ThresholdNodeSet(
        uint32 indexed shareEpoch, uint16 indexed index, bytes verifyingShare, address signer
    );

    function setUp() public {
        registry = deployRegistry(OWNER);
    }

    function _key(uint256 i) internal pure returns (uint256) {
        return 0x5EC12E7000 + i;
    }

    /// @dev A share (33 bytes) that only has to be well encoded here: the guest checks the math.
    function _share(uint8 i) internal pure returns (bytes memory s) {
        s = new bytes(33);
        s[0] = 0x03;
        for (uint256 k = 1; k < 33; k++) {
            s[k] = bytes1(i);
        }
    }

    /// @dev Nodes `first`..`first + n - 1`, each with its own signer.
    function _nodes(uint16 first, uint16 n) internal pure returns (KmsRegistry.ThresholdNode[] memory nodes) {
        nodes = new KmsRegistry.ThresholdNode[](n);
        for (uint16 i = 0; i < n; i++) {
            uint16 index = first + i;
            nodes[i] = KmsRegistry.ThresholdNode(index, _share(uint8(index)), vm.addr(_key(index)));
        }
    }

    function _sign(uint256 key, uint32 epoch) internal pure returns (bytes memory) {
        (uint8 v, bytes32 r, bytes32 s) = vm.sign(key, AppKeyLib.appKeyDigest(APP, APP_SIGNER, epoch));
        return abi.encodePacked(r, s, v);
    }

    function _sigs(uint16[] memory nodes, uint32 epoch) internal pure returns (bytes[] memory sigs) {
        sigs = new bytes[](nodes.length);
        for (uint256 i = 0; i < nodes.length; i++) {
            sigs[i] = _sign(_key(nodes[i]), epoch);
        }
    }

    function _set3of5() internal {
        vm.prank(OWNER);
        registry.setThresholdGroup(3, GROUP_KEY, _nodes(1, 5));
    }

    function _list(uint16 a, uint16 b, uint16 c) internal pure returns (uint16[] memory l) {
        l = new uint16[](3);
        (l[0], l[1], l[2]) = (a, b, c);
    }

    function test_replicatedRootModeUntilASetIsRecorded() public view {
        assertFalse(registry.thresholdMode(), "registry.thresholdMode()");
        (uint32 shareEpoch,,, KmsRegistry.ThresholdNode[] memory nodes) = registry.thresholdGroup();
        assertEq(shareEpoch, 0, "shareEpoch 0");
        assertEq(nodes.length, 0, "nodes.length 0");
        assertFalse(
            registry.verifyAppKeyThreshold(APP, APP_SIGNER, 0, _sigs(_list(1, 2, 3), 0)),
            "registry.verifyAppKeyThreshold(APP APP_S"
        );
    }

    function test_setRecordsTheSetWithEvents() public {
        vm.expectEmit(true, false, false, true, address(registry));
        emit ThresholdGroupSet(1, 3, GROUP_KEY);
        KmsRegistry.ThresholdNode[] memory want = _nodes(1, 5);
        for (uint256 i = 0; i < 5; i++) {
            vm.expectEmit(true, true, false, true, address(registry));
            emit ThresholdNodeSet(1, want[i].index, want[i].verifyingShare, want[i].signer);
        }
        _set3of5();
        assertTrue(registry.thresholdMode(), "registry.thresholdMode()");
        (uint32 shareEpoch, uint16 t, bytes memory key, KmsRegistry.ThresholdNode[] memory nodes) =
            registry.thresholdGroup();
        assertEq(shareEpoch, 1, "shareEpoch 1");
        assertEq(t, 3, "t 3");
        assertEq(key, GROUP_KEY, "key GROUP_KEY");
        assertEq(nodes.length, 5, "nodes.length 5");
        assertEq(nodes[4].index, 5, "nodes4.index 5");
        assertEq(nodes[4].verifyingShare, _share(5), "nodes4.verifyingShare _share(5)");
        assertEq(nodes[4].signer, vm.addr(_key(5)), "nodes4.signer vm.addr(_key(5))");
    }

    function test_onlyTheOwnerSets() public {
        vm.prank(STRANGER);
        vm.expectRevert();
        registry.setThresholdGroup(3, GROUP_KEY, _nodes(1, 5));
    }

    function test_badSetsAreRefused() public {
        vm.startPrank(OWNER);
        vm.expectRevert(abi.encodeWithSelector(KmsRegistry.BadThreshold.selector, 0, 5));
        registry.setThresholdGroup(0, GROUP_KEY, _nodes(1, 5));
        vm.expectRevert(abi.encodeWithSelector(KmsRegistry.BadThreshold.selector, 6, 5));
        registry.setThresholdGroup(6, GROUP_KEY, _nodes(1, 5));
        vm.expectRevert(abi.encodeWithSelector(KmsRegistry.BadPointEncoding.selector, 32));
        registry.setThresholdGroup(
            3, hex"02a0434d9e47f3c86235477c7b1ae6ae5d3442d49b1943c2b752a68e2a47e247", _nodes(1, 5)
        );
        bytes memory uncompressed = GROUP_KEY;
        uncompressed[0] = 0x04;
        vm.expectRevert(abi.encodeWithSelector(KmsRegistry.BadPointEncoding.selector, 33));
        registry.setThresholdGroup(3, uncompressed, _nodes(1, 5));

        KmsRegistry.ThresholdNode[] memory zero = _nodes(0, 5);
        vm.expectRevert(abi.encodeWithSelector(KmsRegistry.NodeIndicesNotIncreasing.selector, 0));
        registry.setThresholdGroup(3, GROUP_KEY, zero);
        KmsRegistry.ThresholdNode[] memory repeated = _nodes(1, 5);
        repeated[3].index = 3;
        vm.expectRevert(abi.encodeWithSelector(KmsRegistry.NodeIndicesNotIncreasing.selector, 3));
        registry.setThresholdGroup(3, GROUP_KEY, repeated);
        KmsRegistry.ThresholdNode[] memory badShare = _nodes(1, 5);
        badShare[2].verifyingShare = hex"00";
        vm.expectRevert(abi.encodeWithSelector(KmsRegistry.BadPointEncoding.selector, 1));
        registry.setThresholdGroup(3, GROUP_KEY, badShare);
        KmsRegistry.ThresholdNode[] memory sameSigner = _nodes(1, 5);
        sameSigner[4].signer = sameSigner[0].signer;
        vm.expectRevert(abi.encodeWithSelector(KmsRegistry.BadNodeSigner.selector, sameSigner[0].signer));
        registry.setThresholdGroup(3, GROUP_KEY, sameSigner);
        KmsRegistry.ThresholdNode[] memory noSigner = _nodes(1, 5);
        noSigner[1].signer = address(0);
        vm.expectRevert(abi.encodeWithSelector(KmsRegistry.BadNodeSigner.selector, address(0)));
        registry.setThresholdGroup(3, GROUP_KEY, noSigner);
        vm.stopPrank();
        assertFalse(registry.thresholdMode(), "registry.thresholdMode()");
    }

    function test_tOfNSignaturesVerify() public {
        _set3of5();
        assertTrue(
            registry.verifyAppKeyThreshold(APP, APP_SIGNER, 4, _sigs(_list(1, 2, 3), 4)),
            "registry.verifyAppKeyThreshold(APP APP_S"
        );
        assertTrue(
            registry.verifyAppKeyThreshold(APP, APP_SIGNER, 4, _sigs(_list(5, 2, 4), 4)),
            "registry.verifyAppKeyThreshold(APP APP_S"
        );
        // Another epoch, app or signing address: no.
        assertFalse(
            registry.verifyAppKeyThreshold(APP, APP_SIGNER, 5, _sigs(_list(1, 2, 3), 4)),
            "registry.verifyAppKeyThreshold(APP APP_S"
        );
        assertFalse(
            registry.verifyAppKeyThreshold(address(0xB0B), APP_SIGNER, 4, _sigs(_list(1, 2, 3), 4)),
            "registry.verifyAppKeyThreshold(address(0"
        );
        assertFalse(
            registry.verifyAppKeyThreshold(APP, address(0xB0B), 4, _sigs(_list(1, 2, 3), 4)),
            "registry.verifyAppKeyThreshold(APP addre"
        );
    }

    function test_fewerThanTDistinctNodesDoNotVerify() public {
        _set3of5();
        uint16[] memory two = new uint16[](2);
        (two[0], two[1]) = (1, 2);
        assertFalse(registry.verifyAppKeyThreshold(APP, APP_SIGNER, 0, _sigs(two, 0)), "two");
        // One node's signature three times counts once.
        assertFalse(registry.verifyAppKeyThreshold(APP, APP_SIGNER, 0, _sigs(_list(2, 2, 2), 0)), "repeated");
        // Nodes 1 and 3, and as the third the high-S twin of node 2's signature: OpenZeppelin's
        // ECDSA refuses it, so it does not make the threshold.
        bytes[] memory twice = _sigs(_list(1, 3, 2), 0);
        (uint8 v, bytes32 r, bytes32 s) = vm.sign(_key(2), AppKeyLib.appKeyDigest(APP, APP_SIGNER, 0));
        twice[2] = abi.encodePacked(
            r,
            bytes32(0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141 - uint256(s)),
            v == 27 ? uint8(28) : uint8(27)
        );
        assertFalse(registry.verifyAppKeyThreshold(APP, APP_SIGNER, 0, twice), "twin");
        // Someone outside the set, and garbage, do not count.
        bytes[] memory outsider = _sigs(_list(1, 2, 9), 0);
        assertFalse(registry.verifyAppKeyThreshold(APP, APP_SIGNER, 0, outsider), "outsider");
        bytes[] memory garbage = _sigs(_list(1, 2, 3), 0);
        garbage[2] = hex"0102";
        assertFalse(registry.verifyAppKeyThreshold(APP, APP_SIGNER, 0, garbage), "garbage");
        garbage[2] = new bytes(65);
        assertFalse(registry.verifyAppKeyThreshold(APP, APP_SIGNER, 0, garbage), "zero");
        // Extra, non-counting signatures beside t good ones do not hurt.
        bytes[] memory extra = new bytes[](5);
        bytes[] memory good = _sigs(_list(3, 4, 5), 0);
        (extra[0], extra[1], extra[2], extra[3], extra[4]) = (hex"00", good[0], outsider[2], good[1], good[2]);
        assertTrue(registry.verifyAppKeyThreshold(APP, APP_SIGNER, 0, extra), "extra");
    }

    function test_theRootSignatureStopsCountingInTheThresholdMode() public {
        uint256 rootKey = 0xA11CE5EC12E7;
        vm.prank(OWNER);
        registry.setKmsInfo(vm.addr(rootKey), hex"04");
        bytes memory rootSig = _sign(rootKey, 0);
        assertTrue(registry.verifyAppKey(APP, APP_SIGNER, 0, rootSig), "replicated-root mode");
        _set3of5();
        assertFalse(registry.verifyAppKey(APP, APP_SIGNER, 0, rootSig), "threshold mode");
    }

    function test_aSetGuestsWouldRefuseIsRefused() public {
        vm.prank(OWNER);
        vm.expectRevert(abi.encodeWithSelector(KmsRegistry.TooManyNodes.selector, 256));
        registry.setThresholdGroup(3, GROUP_KEY, _nodes(1, 256));
    }

    function test_reshareKeepsTheGroupKeyAndRetiresTheOldSet() public {
        _set3of5();
        // Nodes 1 and 2 leave, 6 and 7 join: indices 3..7, same group key.
        vm.prank(OWNER);
        registry.setThresholdGroup(3, GROUP_KEY, _nodes(3, 5));
        (uint32 shareEpoch,,, KmsRegistry.ThresholdNode[] memory nodes) = registry.thresholdGroup();
        assertEq(shareEpoch, 2, "shareEpoch 2");
        assertEq(nodes.length, 5, "nodes.length 5");
        assertEq(nodes[0].index, 3, "nodes0.index 3");
        assertTrue(
            registry.verifyAppKeyThreshold(APP, APP_SIGNER, 0, _sigs(_list(3, 6, 7), 0)),
            "registry.verifyAppKeyThreshold(APP APP_S"
        );
        // The nodes that left no longer count.
        assertFalse(
            registry.verifyAppKeyThreshold(APP, APP_SIGNER, 0, _sigs(_list(1, 2, 3), 0)),
            "registry.verifyAppKeyThreshold(APP APP_S"
        );
        // A re-share cannot change the group key (it would change every app key).
        bytes memory other = GROUP_KEY;
        other[32] = 0x00;
        vm.prank(OWNER);
        vm.expectRevert(KmsRegistry.GroupKeyChanged.selector);
        registry.setThresholdGroup(3, other, _nodes(1, 5));
    }

    function test_gas_verifyAppKeyThreshold_3of5() public {
        _set3of5();
        bytes[] memory sigs = _sigs(_list(1, 3, 5), 0);
        // The gas report (`forge test --gas-report`) has the figure of contracts/README.md.
        assertTrue(registry.verifyAppKeyThreshold(APP, APP_SIGNER, 0, sigs), "3 of 5");
    }
}
