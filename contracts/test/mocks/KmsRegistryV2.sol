// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {KmsRegistry} from "../../src/KmsRegistry.sol";

/// @notice Upgrade target used by the tests: same storage, one extra function.
contract KmsRegistryV2 is KmsRegistry {
    function version() external pure returns (string memory) {
        return "2";
    }
}
