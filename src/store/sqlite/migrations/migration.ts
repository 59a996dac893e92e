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
