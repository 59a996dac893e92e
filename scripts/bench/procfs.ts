import { readdirSync, readFileSync } from "node:fs";

// What the bench reads about server processes from /proc: CPU time and resident memory,
// summed over a process and its children (node:cluster workers).

const TICK_US = 10_000; // USER_HZ is 100 on Linux

function stat(pid: number): string[] | null {
  try {
    const s = readFileSync(`/proc/${pid}/stat`, "utf8");
    // comm may hold spaces; the fields after it start past the last ')'.
    return s.slice(s.lastIndexOf(")") + 2).split(" ");
  } catch {
    return null;
  }
}

/** The process and its descendants. */
export function processTree(root: number): number[] {
  const children = new Map<number, number[]>();
  for (const d of readdirSync("/proc")) {
    if (!/^\d+$/.test(d)) continue;
    const f = stat(Number(d));
    if (!f) continue;
    const ppid = Number(f[1]);
    children.set(ppid, [...(children.get(ppid) ?? []), Number(d)]);
  }
  const out: number[] = [];
  const walk = (p: number) => {
    out.push(p);
    for (const c of children.get(p) ?? []) walk(c);
  };
  walk(root);
  return out;
}

/** utime + stime of the processes, in microseconds. */
export function cpuMicros(pids: number[]): number {
  let ticks = 0;
  for (const p of pids) {
    const f = stat(p);
    if (f) ticks += Number(f[11]) + Number(f[12]); // fields 14 and 15 of stat(5)
  }
  return ticks * TICK_US;
}

/** Resident set size of the processes, in bytes. */
export function rssBytes(pids: number[]): number {
  let kb = 0;
  for (const p of pids) {
    try {
      const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${p}/status`, "utf8"));
      if (m) kb += Number(m[1]);
    } catch {
      // gone
    }
  }
  return kb * 1024;
}
