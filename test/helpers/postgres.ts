import { afterAll, beforeAll } from "vitest";
import { createTestDatabase, stopTestServer, type TestDatabase } from "./postgres-server.js";

export { createTestDatabase, type TestDatabase } from "./postgres-server.js";

// The vitest side of postgres-server.ts (which says where the server comes from).

/**
 * For a test file: a database of its own for the file's lifetime. Call at the top
 * level; the returned function gives the database inside tests and hooks.
 */
export function useTestDatabase(): () => TestDatabase {
  let db: (TestDatabase & { drop(): Promise<void> }) | null = null;
  beforeAll(async () => {
    db = await createTestDatabase();
  }, 600_000); // a first run on a bare machine installs postgresql
  afterAll(async () => {
    await db?.drop();
    await stopTestServer();
  });
  return () => {
    if (!db) throw new Error("the test database is not ready");
    return db;
  };
}
