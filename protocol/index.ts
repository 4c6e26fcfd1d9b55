export * from "./abis";
export * from "./addresses";
export * from "./eip712";
export * from "./permit";
export * from "./session";
