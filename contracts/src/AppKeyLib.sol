// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {MessageHashUtils} from "@openzeppelin/contracts/utils/cryptography/MessageHashUtils.sol";

/// @notice The message a KMS root signing key signs to vouch for an app's signing key.
library AppKeyLib {
    /// @notice Domain tag prefixed to every app-key message.
    string internal constant DOMAIN = "snpkms app key";

    /// @notice keccak256(abi.encodePacked("snpkms app key", appId, appSigningAddress, epoch)),
    ///         i.e. 14 ASCII bytes || 20 bytes || 20 bytes || 4 bytes big-endian epoch (58 bytes).
    function appKeyMessageHash(address appId, address appSigningAddress, uint32 epoch)
        internal
        pure
        returns (bytes32)
    {
        return keccak256(abi.encodePacked(DOMAIN, appId, appSigningAddress, epoch));
    }

    /// @notice The digest actually signed: the EIP-191 personal-sign hash of
    ///         {appKeyMessageHash}, i.e.
    ///         keccak256("\x19Ethereum Signed Message:\n32" || appKeyMessageHash(...)).
    function appKeyDigest(address appId, address appSigningAddress, uint32 epoch)
        internal
        pure
        returns (bytes32)
    {
        return MessageHashUtils.toEthSignedMessageHash(appKeyMessageHash(appId, appSigningAddress, epoch));
    }
}
