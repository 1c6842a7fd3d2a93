// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {Vm, vm as VM} from "./Vm.sol";

/// @notice Minimal test base: cheatcodes + assertions that revert (a reverting test fails).
abstract contract Test {
    Vm internal constant vm = VM;

    error AssertionFailed(string what);

    function fail(string memory what) internal pure {
        revert AssertionFailed(what);
    }

    function assertTrue(bool c, string memory what) internal pure {
        if (!c) fail(what);
    }

    function assertFalse(bool c, string memory what) internal pure {
        if (c) fail(what);
    }

    function assertEq(uint256 a, uint256 b, string memory what) internal pure {
        if (a != b) fail(string.concat(what, ": ", _u(a), " != ", _u(b)));
    }

    function assertEq(address a, address b, string memory what) internal pure {
        if (a != b) fail(what);
    }

    function assertEq(bytes32 a, bytes32 b, string memory what) internal pure {
        if (a != b) fail(what);
    }

    function assertEq(bool a, bool b, string memory what) internal pure {
        if (a != b) fail(what);
    }

    function assertEq(string memory a, string memory b, string memory what) internal pure {
        if (keccak256(bytes(a)) != keccak256(bytes(b))) {
            fail(string.concat(what, ": \"", a, "\" != \"", b, "\""));
        }
    }

    function assertEq(bytes memory a, bytes memory b, string memory what) internal pure {
        if (keccak256(a) != keccak256(b)) fail(what);
    }

    function assertNotEq(address a, address b, string memory what) internal pure {
        if (a == b) fail(what);
    }

    function _u(uint256 v) private pure returns (string memory) {
        if (v == 0) return "0";
        uint256 len;
        for (uint256 t = v; t != 0; t /= 10) {
            len++;
        }
        bytes memory b = new bytes(len);
        for (; v != 0; v /= 10) {
            b[--len] = bytes("0123456789")[v % 10];
        }
        return string(b);
    }
}
