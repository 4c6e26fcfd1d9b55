export * from "./abis";
export * from "./addresses";
export * from "./eip712";
export * from "./session";
