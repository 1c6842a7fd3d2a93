// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {ERC1967Proxy} from "@openzeppelin/contracts/proxy/ERC1967/ERC1967Proxy.sol";

import {Test} from "./Test.sol";
import {KmsRegistry} from "../../src/KmsRegistry.sol";
import {AppAuth} from "../../src/AppAuth.sol";
import {BootInfo, TcbVersion} from "../../src/SnpTypes.sol";

/// @notice Shared setup: a KmsRegistry behind an ERC1967Proxy plus helpers to build inputs.
abstract contract Fixture is Test {
    address internal constant OWNER = address(0x0A11CE);
    address internal constant STRANGER = address(0xBAD);
    address internal constant APP_OWNER = address(0xA99);

    KmsRegistry internal registry;
    KmsRegistry internal registryImpl;

    function deployRegistry(address owner_) internal returns (KmsRegistry) {
        registryImpl = new KmsRegistry();
        ERC1967Proxy proxy =
            new ERC1967Proxy(address(registryImpl), abi.encodeCall(KmsRegistry.initialize, (owner_)));
        return KmsRegistry(address(proxy));
    }

    /// @dev A 48-byte measurement filled with `b`.
    function measurement(uint8 b) internal pure returns (bytes memory m) {
        m = new bytes(48);
        for (uint256 i = 0; i < 48; i++) {
            m[i] = bytes1(b);
        }
    }

    /// @dev A 64-byte chip id filled with `b`.
    function chipId(uint8 b) internal pure returns (bytes memory c) {
        c = new bytes(64);
        for (uint256 i = 0; i < 64; i++) {
            c[i] = bytes1(b);
        }
    }

    function bytesOfLength(uint256 n) internal pure returns (bytes memory) {
        return new bytes(n);
    }

    function tcb(uint8 bl, uint8 tee, uint8 snp, uint8 ucode, uint8 fmc)
        internal
        pure
        returns (TcbVersion memory t)
    {
        t = TcbVersion({bootloader: bl, tee: tee, snp: snp, microcode: ucode, fmc: fmc});
    }

    function tcbEq(TcbVersion memory a, TcbVersion memory b) internal pure returns (bool) {
        return a.bootloader == b.bootloader && a.tee == b.tee && a.snp == b.snp && a.microcode == b.microcode
            && a.fmc == b.fmc;
    }

    function bootInfo(
        bytes memory m,
        bytes memory chip,
        address appId,
        bytes32 composeHash,
        uint8 product,
        TcbVersion memory t
    ) internal pure returns (BootInfo memory info) {
        info = BootInfo({
            measurement: m,
            chipId: chip,
            appId: appId,
            composeHash: composeHash,
            product: product,
            reportedTcb: t,
            committedTcb: t,
            launchTcb: t,
            hostData: bytes32(uint256(0x4854)),
            guestSvn: 1
        });
    }

    function expectOwnable(address caller) internal {
        vm.expectRevert(abi.encodeWithSignature("OwnableUnauthorizedAccount(address)", caller));
    }
}
