// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

/// @notice The few forge cheatcodes our tests use (forge-std is not available offline).
///         Signatures match forge's cheatcode interface exactly.
interface Vm {
    function prank(address msgSender) external;
    function startPrank(address msgSender) external;
    function stopPrank() external;
    function expectRevert() external;
    function expectRevert(bytes4 revertData) external;
    function expectRevert(bytes calldata revertData) external;
    function expectEmit(bool checkTopic1, bool checkTopic2, bool checkTopic3, bool checkData) external;
    function expectEmit(bool checkTopic1, bool checkTopic2, bool checkTopic3, bool checkData, address emitter)
        external;
    function addr(uint256 privateKey) external pure returns (address keyAddr);
    function sign(uint256 privateKey, bytes32 digest) external pure returns (uint8 v, bytes32 r, bytes32 s);
    function label(address account, string calldata newLabel) external;
    function load(address target, bytes32 slot) external view returns (bytes32 data);
}

/// @dev address(uint160(uint256(keccak256("hevm cheat code"))))
Vm constant vm = Vm(0x7109709ECfa91a80626fF3989D68f67F5b1DD12D);
