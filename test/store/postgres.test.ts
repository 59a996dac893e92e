import { PostgresStore } from "../../src/store/postgres/index.js";
import { useTestDatabase } from "../helpers/postgres.js";
import { runStoreConformance } from "./conformance.js";

// The shared Store contract on PostgreSQL: each test gets a fresh schema in this file's
// database, with a small pool so concurrency tests really run on several connections.
const db = useTestDatabase();

runStoreConformance("postgres (READ COMMITTED, audit head row lock)", async () => {
  return new PostgresStore({ connectionString: await db().freshSchemaUrl(), poolSize: 6 });
});
