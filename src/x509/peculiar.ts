// The one door to @peculiar/x509 for Mayfly code, for two load-order reasons:
// - @peculiar/x509 2.x resolves algorithms through tsyringe, which throws at load
//   unless a Reflect metadata polyfill was loaded first;
// - asn1js must get the UUID-OID decoding fix (asn1js-oid-fix.ts) before anything
//   parses a Mayfly certificate.
// ES modules evaluate imports in order, so importing the library through this file
// guarantees both. Code elsewhere should import "src/x509/peculiar.js", not the package.
import "reflect-metadata";
import "./asn1js-oid-fix.js";

export * from "@peculiar/x509";
