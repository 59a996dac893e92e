import { MayflyError } from "../../../errors/index.js";

/**
 * One numbered schema step. Kept as TypeScript strings rather than .sql files so the
 * compiled output needs no asset copying. Never edit a released migration: the runner
 * checks each applied one's checksum and refuses a database whose history differs.
 */
export interface Migration {
  version: number;
  name: string;
  sql: string;
}

/**
 * Versions strictly ascend from at least 1, but may skip numbers: a step written on a
 * parallel branch holds its number before it lands (0011 came before 0010).
 */
export function checkOrder(migrations: readonly Migration[]): void {
  migrations.forEach((m, i) => {
    const prev = i === 0 ? 0 : migrations[i - 1]!.version;
    if (!Number.isSafeInteger(m.version) || m.version <= prev)
      throw new MayflyError("internal.error", `migration ${m.name} is out of order`);
  });
}

/**
 * A step this database lacks although it has a later one: a gap in the build's list was
 * filled after the database moved past it. Applying it now would run it on a schema it
 * was not written for, so the database is refused, as one whose history differs.
 */
export function missedStep(m: Migration, newest: number): MayflyError {
  return new MayflyError(
    "config.invalid",
    `migration ${m.version} (${m.name}) is missing from this database, which already has ` +
      `migration ${newest}: it was migrated by a build without step ${m.version}`,
  );
}
