// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

/// @notice An AMD SEV-SNP TCB version, split into its components.
/// @dev `fmc` only exists on Turin; it is 0 on Milan and Genoa.
struct TcbVersion {
    uint8 bootloader;
    uint8 tee;
    uint8 snp;
    uint8 microcode;
    uint8 fmc;
}

/// @notice What a KMS node learned from a verified SEV-SNP attestation report (plus the
///         app context it was asked about). The Rust side ABI-encodes exactly this layout.
/// @dev product: 0 = Milan, 1 = Genoa, 2 = Turin; anything else is unknown.
struct BootInfo {
    bytes measurement; // 48 bytes (SNP launch digest)
    bytes chipId; // 64 bytes, or empty: no AMD certificate ties the guest to a chip (VLEK, masked id)
    address appId; // the app's AppAuth address (ignored by isKmsAllowed)
    bytes32 composeHash;
    uint8 product;
    TcbVersion reportedTcb;
    TcbVersion committedTcb;
    TcbVersion launchTcb;
    bytes32 hostData;
    uint32 guestSvn;
}

/// @notice Constants and helpers shared by the snpkms contracts.
library SnpLib {
    uint8 internal constant PRODUCT_MILAN = 0;
    uint8 internal constant PRODUCT_GENOA = 1;
    uint8 internal constant PRODUCT_TURIN = 2;
    uint8 internal constant MAX_PRODUCT = PRODUCT_TURIN;

    uint256 internal constant MEASUREMENT_LENGTH = 48;
    uint256 internal constant CHIP_ID_LENGTH = 64;

    /// @notice True iff every component of `v` is >= the same component of `min`
    ///         (componentwise, not lexicographic).
    function tcbAtLeast(TcbVersion memory v, TcbVersion memory min) internal pure returns (bool) {
        return v.bootloader >= min.bootloader && v.tee >= min.tee && v.snp >= min.snp
            && v.microcode >= min.microcode && v.fmc >= min.fmc;
    }

    /// @notice The device id of a chip: keccak256 of its 64-byte chip id.
    function deviceId(bytes calldata chipId) internal pure returns (bytes32) {
        return keccak256(chipId);
    }
}
