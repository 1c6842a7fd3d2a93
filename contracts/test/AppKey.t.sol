// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {Fixture} from "./utils/Fixture.sol";
import {AppKeyLib} from "../src/AppKeyLib.sol";

/// @notice KmsRegistry.verifyAppKey and the AppKeyLib digest (with a fixed cross-language vector).
contract AppKeyTest is Fixture {
    uint256 internal constant ROOT_KEY = 0xA11CE5EC12E7;
    uint256 internal constant OTHER_KEY = 0xB0B5EC12E7;
    address internal root;
    address internal constant APP = address(0xA991D);
    address internal constant APP_SIGNER = address(0x51C4E7);

    function setUp() public {
        registry = deployRegistry(OWNER);
        root = vm.addr(ROOT_KEY);
        vm.prank(OWNER);
        registry.setKmsInfo(root, hex"04");
    }

    function _sign(uint256 key, address appId, address signer, uint32 epoch)
        internal
        pure
        returns (bytes memory)
    {
        (uint8 v, bytes32 r, bytes32 s) = vm.sign(key, AppKeyLib.appKeyDigest(appId, signer, epoch));
        return abi.encodePacked(r, s, v);
    }

    // --------------------------------------------------------- fixed vector

    // private key 1 (address 0x7E5F4552091A69125d5DfCb7b8C2659029395Bdf), appId 0x11..11,
    // appSigningAddress 0x22..22, epoch 7. Values computed independently with `cast`
    // (see contracts/README.md).
    address internal constant VEC_APP = 0x1111111111111111111111111111111111111111;
    address internal constant VEC_SIGNER = 0x2222222222222222222222222222222222222222;
    uint32 internal constant VEC_EPOCH = 7;
    bytes32 internal constant VEC_MESSAGE_HASH =
        0x808f25fcc74ecc7338e4c43d5015b2deccb620f1b89fb1a54348de74208e5b60;
    bytes32 internal constant VEC_DIGEST = 0x22ab6c2819ece03601054edbb5731402b6225786c02eda4eb10320e0c31baeec;
    bytes internal constant VEC_SIGNATURE =
        hex"7dbeadf2427e35090903b403571ff8b2e882ac8f541afe90a44897bab3a7e9da4d87d1aacb7c98fdc1019cd6ecb54d6d418d6ff29a940570868773e45cc873181c";

    function test_vector_digest() public pure {
        assertEq(
            AppKeyLib.appKeyMessageHash(VEC_APP, VEC_SIGNER, VEC_EPOCH),
            VEC_MESSAGE_HASH,
            "message hash vector"
        );
        assertEq(AppKeyLib.appKeyDigest(VEC_APP, VEC_SIGNER, VEC_EPOCH), VEC_DIGEST, "digest vector");
        // the packed preimage is exactly 58 bytes: tag(14) || appId(20) || signer(20) || epoch(4, big-endian)
        assertEq(
            keccak256(
                hex"736e706b6d7320617070206b65791111111111111111111111111111111111111111222222222222222222222222222222222222222200000007"
            ),
            VEC_MESSAGE_HASH,
            "preimage"
        );
    }

    function test_vector_signature() public {
        address vecRoot = vm.addr(1);
        assertEq(vecRoot, 0x7E5F4552091A69125d5DfCb7b8C2659029395Bdf, "address of key 1");
        // vm.sign is RFC 6979 deterministic, so it reproduces the cast signature byte for byte
        (uint8 v, bytes32 r, bytes32 s) = vm.sign(1, VEC_DIGEST);
        assertEq(abi.encodePacked(r, s, v), VEC_SIGNATURE, "signature vector");

        vm.prank(OWNER);
        registry.setKmsInfo(vecRoot, "");
        assertTrue(registry.verifyAppKey(VEC_APP, VEC_SIGNER, VEC_EPOCH, VEC_SIGNATURE), "vector verifies");
        assertFalse(
            registry.verifyAppKey(VEC_APP, VEC_SIGNER, VEC_EPOCH + 1, VEC_SIGNATURE), "vector, other epoch"
        );
    }

    // ---------------------------------------------------------- verifyAppKey

    function test_verifyAppKey_valid() public view {
        bytes memory sig = _sign(ROOT_KEY, APP, APP_SIGNER, 3);
        assertTrue(registry.verifyAppKey(APP, APP_SIGNER, 3, sig), "valid");
    }

    function test_verifyAppKey_otherSigner() public view {
        bytes memory sig = _sign(OTHER_KEY, APP, APP_SIGNER, 3);
        assertFalse(registry.verifyAppKey(APP, APP_SIGNER, 3, sig), "other signer");
    }

    function test_verifyAppKey_otherEpoch() public view {
        bytes memory sig = _sign(ROOT_KEY, APP, APP_SIGNER, 3);
        assertFalse(registry.verifyAppKey(APP, APP_SIGNER, 4, sig), "other epoch");
        assertFalse(registry.verifyAppKey(APP, APP_SIGNER, 2, sig), "other epoch 2");
    }

    function test_verifyAppKey_otherApp() public view {
        bytes memory sig = _sign(ROOT_KEY, APP, APP_SIGNER, 3);
        assertFalse(registry.verifyAppKey(address(0xA991E), APP_SIGNER, 3, sig), "other app");
    }

    function test_verifyAppKey_otherAppSigningAddress() public view {
        bytes memory sig = _sign(ROOT_KEY, APP, APP_SIGNER, 3);
        assertFalse(registry.verifyAppKey(APP, address(0x51C4E8), 3, sig), "other app signing address");
    }

    function test_verifyAppKey_rawDigestNotAccepted() public view {
        // signing the message hash without the EIP-191 prefix must not verify
        (uint8 v, bytes32 r, bytes32 s) = vm.sign(ROOT_KEY, AppKeyLib.appKeyMessageHash(APP, APP_SIGNER, 3));
        assertFalse(registry.verifyAppKey(APP, APP_SIGNER, 3, abi.encodePacked(r, s, v)), "no prefix");
    }

    function test_verifyAppKey_malformed() public view {
        bytes memory sig = _sign(ROOT_KEY, APP, APP_SIGNER, 3);
        // 64 bytes: valid r||s but no v (also not accepted as an EIP-2098 compact signature)
        bytes memory sig64 = new bytes(64);
        for (uint256 i = 0; i < 64; i++) {
            sig64[i] = sig[i];
        }
        assertFalse(registry.verifyAppKey(APP, APP_SIGNER, 3, sig64), "64 bytes");
        assertFalse(registry.verifyAppKey(APP, APP_SIGNER, 3, new bytes(64)), "64 zero bytes");
        assertFalse(registry.verifyAppKey(APP, APP_SIGNER, 3, ""), "0 bytes");
        assertFalse(registry.verifyAppKey(APP, APP_SIGNER, 3, new bytes(65)), "65 zero bytes");
        assertFalse(registry.verifyAppKey(APP, APP_SIGNER, 3, abi.encodePacked(sig, uint8(0))), "66 bytes");
        // bad v
        bytes memory badV = abi.encodePacked(sig);
        badV[64] = bytes1(uint8(29));
        assertFalse(registry.verifyAppKey(APP, APP_SIGNER, 3, badV), "bad v");
        // high-s (malleated) signature is rejected
        bytes32 r;
        bytes32 s;
        uint8 v;
        assembly {
            r := mload(add(sig, 0x20))
            s := mload(add(sig, 0x40))
            v := byte(0, mload(add(sig, 0x60)))
        }
        uint256 n = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141;
        bytes memory malleated = abi.encodePacked(r, bytes32(n - uint256(s)), v == 27 ? uint8(28) : uint8(27));
        assertFalse(registry.verifyAppKey(APP, APP_SIGNER, 3, malleated), "high s");
    }

    function test_verifyAppKey_noRootSigner() public {
        bytes memory sig = _sign(ROOT_KEY, APP, APP_SIGNER, 3);
        vm.prank(OWNER);
        registry.setKmsInfo(address(0), hex"04");
        assertFalse(registry.verifyAppKey(APP, APP_SIGNER, 3, sig), "no root");
        // garbage that ecrecovers to address(0) must not match an unset root either
        assertFalse(registry.verifyAppKey(APP, APP_SIGNER, 3, new bytes(65)), "zero sig, no root");

        // a fresh registry has no root signer
        assertFalse(deployRegistry(OWNER).verifyAppKey(APP, APP_SIGNER, 3, sig), "fresh registry");
    }

    function test_verifyAppKey_rootRotation() public {
        bytes memory sig = _sign(ROOT_KEY, APP, APP_SIGNER, 3);
        vm.prank(OWNER);
        registry.setKmsInfo(vm.addr(OTHER_KEY), hex"04");
        assertFalse(registry.verifyAppKey(APP, APP_SIGNER, 3, sig), "old root no longer valid");
        assertTrue(
            registry.verifyAppKey(APP, APP_SIGNER, 3, _sign(OTHER_KEY, APP, APP_SIGNER, 3)), "new root valid"
        );
    }

    function test_appKeyDigest_isEip191OfMessageHash() public pure {
        bytes32 mh = AppKeyLib.appKeyMessageHash(APP, APP_SIGNER, 9);
        assertEq(
            AppKeyLib.appKeyDigest(APP, APP_SIGNER, 9),
            keccak256(abi.encodePacked("\x19Ethereum Signed Message:\n32", mh)),
            "eip-191"
        );
        assertEq(
            mh,
            keccak256(abi.encodePacked("snpkms app key", APP, APP_SIGNER, uint32(9))),
            "packed message hash"
        );
    }

    function testFuzz_verifyAppKey(uint256 keySeed, address appId, address signer, uint32 epoch) public view {
        uint256 key = (keySeed % 1000) + 1;
        bytes memory sig = _sign(key, appId, signer, epoch);
        bool expected = vm.addr(key) == root;
        assertEq(registry.verifyAppKey(appId, signer, epoch, sig), expected, "fuzz");
        assertTrue(registry.verifyAppKey(appId, signer, epoch, _sign(ROOT_KEY, appId, signer, epoch)), "root");
    }
}
