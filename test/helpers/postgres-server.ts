import { execFileSync, spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { chownSync, existsSync, mkdtempSync, readdirSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import pg from "pg";

// The PostgreSQL the tests run against, in this order:
//   1. MAYFLY_TEST_DATABASE_URL, if set (any database on a server where that role may
//      CREATE DATABASE);
//   2. the server on 127.0.0.1:5432 as postgres (trust auth), if it answers;
//   3. a throwaway cluster from Debian's postgresql packages (installed first when
//      missing and we are root), in a temp dir, on a free loopback port, stopped and
//      removed when the test file ends (MAYFLY_TEST_PG_THROWAWAY=1 forces this one).
// Each test file gets its own database (mayfly_test_<random>), dropped at the end. The
// PostgreSQL tests never skip: with no way to get a server, they fail and say why.

export interface TestDatabase {
  /** postgres://... of the file's own database. */
  url: string;
  name: string;
  /**
   * A URL for a fresh, empty schema in that database (search_path set through the
   * connection's options): a new empty store without the cost of a database.
   */
  freshSchemaUrl(): Promise<string>;
}

let server: Promise<{ adminUrl: string; stop: () => void }> | null = null;

/** Stops the throwaway cluster, if this process started one (a no-op otherwise). */
export async function stopTestServer(): Promise<void> {
  if (server) (await server).stop();
}

function withDatabase(url: string, database: string, params: Record<string, string> = {}): string {
  const u = new URL(url);
  u.pathname = `/${database}`;
  for (const [k, v] of Object.entries(params)) u.searchParams.set(k, v);
  return u.toString();
}

async function answers(url: string): Promise<boolean> {
  const c = new pg.Client({ connectionString: url, connectionTimeoutMillis: 2_000 });
  c.on("error", () => undefined);
  try {
    await c.connect();
    await c.query("SELECT 1");
    return true;
  } catch {
    return false;
  } finally {
    await c.end().catch(() => undefined);
  }
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once("error", reject);
    s.listen(0, "127.0.0.1", () => {
      const { port } = s.address() as { port: number };
      s.close(() => resolve(port));
    });
  });
}

/** The newest Debian PostgreSQL bin directory, e.g. /usr/lib/postgresql/15/bin. */
function debianBinDir(): string | null {
  const root = "/usr/lib/postgresql";
  if (!existsSync(root)) return null;
  const versions = readdirSync(root)
    .filter((v) => existsSync(join(root, v, "bin", "initdb")))
    .sort((a, b) => Number(b) - Number(a));
  return versions[0] ? join(root, versions[0], "bin") : null;
}

function installPostgres(): void {
  const isRoot = process.getuid?.() === 0;
  if (!isRoot || !existsSync("/usr/bin/apt-get")) {
    throw new Error(
      "PostgreSQL tests need a server: set MAYFLY_TEST_DATABASE_URL, run one on 127.0.0.1:5432, " +
        "or install Debian's postgresql package (sudo apt-get install -y postgresql)",
    );
  }
  const env = { ...process.env, DEBIAN_FRONTEND: "noninteractive" };
  // Two test files may get here at once: apt waits for the other's dpkg lock.
  const lock = ["-o", "DPkg::Lock::Timeout=600"];
  execFileSync("apt-get", [...lock, "update", "-qq"], { env, stdio: "ignore" });
  execFileSync("apt-get", [...lock, "install", "-y", "-qq", "--no-install-recommends", "postgresql"], {
    env,
    stdio: "ignore",
  });
}

/** initdb + pg_ctl start into a temp dir; as the postgres user when root (initdb refuses root). */
async function startThrowawayCluster(): Promise<{ adminUrl: string; stop: () => void }> {
  let bin = debianBinDir();
  if (!bin) {
    installPostgres();
    bin = debianBinDir();
    if (!bin) throw new Error("postgresql was installed but no /usr/lib/postgresql/*/bin/initdb was found");
  }
  const dir = mkdtempSync(join(tmpdir(), "mayfly-pg-"));
  const asRoot = process.getuid?.() === 0;
  const as = (cmd: string, args: string[]) => {
    const full = asRoot ? ["-u", "postgres", "--", cmd, ...args] : args;
    const r = spawnSync(asRoot ? "runuser" : cmd, full, { encoding: "utf8" });
    if (r.status !== 0) throw new Error(`${cmd} failed (${r.status}): ${r.stderr || r.stdout}`);
  };
  if (asRoot) {
    const id = (flag: string) => Number(execFileSync("id", [flag, "postgres"], { encoding: "utf8" }).trim());
    chownSync(dir, id("-u"), id("-g"));
  }
  const data = join(dir, "data");
  as(join(bin, "initdb"), ["-D", data, "-U", "postgres", "-A", "trust", "-E", "UTF8", "--no-sync"]);
  const port = await freePort();
  const opts = `-c listen_addresses=127.0.0.1 -p ${port} -k ${dir} -c max_connections=200`;
  as(join(bin, "pg_ctl"), ["-D", data, "-l", join(dir, "log"), "-o", opts, "-w", "-t", "60", "start"]);
  const stop = () => {
    spawnSync(asRoot ? "runuser" : join(bin, "pg_ctl"), [
      ...(asRoot ? ["-u", "postgres", "--", join(bin, "pg_ctl")] : []),
      "-D",
      data,
      "-m",
      "immediate",
      "-w",
      "stop",
    ]);
    rmSync(dir, { recursive: true, force: true });
  };
  process.once("exit", stop);
  return { adminUrl: `postgres://postgres@127.0.0.1:${port}/postgres`, stop };
}

async function resolveServer(): Promise<{ adminUrl: string; stop: () => void }> {
  const fromEnv = process.env.MAYFLY_TEST_DATABASE_URL;
  if (fromEnv) {
    if (!(await answers(fromEnv))) throw new Error("MAYFLY_TEST_DATABASE_URL is set but does not answer");
    return { adminUrl: fromEnv, stop: () => undefined };
  }
  // MAYFLY_TEST_PG_THROWAWAY=1 skips the local server: how the fallback is exercised.
  if (process.env.MAYFLY_TEST_PG_THROWAWAY === "1") return startThrowawayCluster();
  const local = "postgres://postgres@127.0.0.1:5432/postgres";
  if (await answers(local)) return { adminUrl: local, stop: () => undefined };
  return startThrowawayCluster();
}

async function admin<T>(adminUrl: string, f: (c: pg.Client) => Promise<T>): Promise<T> {
  const c = new pg.Client({ connectionString: adminUrl });
  c.on("error", () => undefined);
  await c.connect();
  try {
    return await f(c);
  } finally {
    await c.end().catch(() => undefined);
  }
}

/** A new database on the test server; `drop()` removes it (closing stray connections). */
export async function createTestDatabase(): Promise<TestDatabase & { drop(): Promise<void> }> {
  server ??= resolveServer();
  const { adminUrl } = await server;
  const name = `mayfly_test_${randomBytes(6).toString("hex")}`;
  await admin(adminUrl, (c) => c.query(`CREATE DATABASE ${name}`));
  const url = withDatabase(adminUrl, name);
  let schemas = 0;
  return {
    url,
    name,
    async freshSchemaUrl() {
      const schema = `s${++schemas}`;
      await admin(url, (c) => c.query(`CREATE SCHEMA ${schema}`));
      return withDatabase(adminUrl, name, { options: `-c search_path=${schema}` });
    },
    async drop() {
      await admin(adminUrl, (c) => c.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`));
    },
  };
}
