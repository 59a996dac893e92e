// The agent side of Mayfly: talks to the CA over HTTPS and to its TPM through the TPM client.
// Never imports the server, the store, the authority or express (DESIGN.md, Layers).
export * from "./ca-client.js";
export * from "./csr.js";
export * from "./enrol.js";
export * from "./errors.js";
export * from "./issue.js";
