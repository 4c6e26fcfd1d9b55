// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

/// @title StaticMulticall
/// @notice Test only: many view calls in one `eth_call`, for the invariant test's checks.
contract StaticMulticall {
    error CallFailed(uint256 index, bytes reason);

    /// @notice Runs each view call and returns their results, concatenated.
    /// @param calls 56-byte records: target (20 bytes), selector (4), one argument (32).
    /// @return results every call's return data, concatenated.
    function read(bytes calldata calls) external view returns (bytes memory results) {
        for (uint256 offset; offset < calls.length; offset += 56) {
            address target = address(bytes20(calls[offset:offset + 20]));
            (bool ok, bytes memory result) = target.staticcall(calls[offset + 20:offset + 56]);
            if (!ok) revert CallFailed(offset / 56, result);
            results = bytes.concat(results, result);
        }
    }
}
