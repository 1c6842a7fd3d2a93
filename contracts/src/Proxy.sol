// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

// Only here so that forge produces an ERC1967Proxy artifact (exported to
// contracts/artifacts/ERC1967Proxy.json) for deploying KmsRegistry.
import {ERC1967Proxy} from "@openzeppelin/contracts/proxy/ERC1967/ERC1967Proxy.sol";
