// Summarises V8 .cpuprofile files (from `npm run bench -- --profile DIR`, i.e. node
// --cpu-prof on every server process): busy self time (idle excluded) by function and by
// file, summed over all profiles in DIR. Wall-clock samples: time blocked in a native call
// (an fsync, a lock wait) counts where it blocked.
//
//   node --import tsx scripts/bench/profile-top.ts DIR [--top 30]
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";

interface Node {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
}
interface Profile {
  nodes: Node[];
  samples: number[];
  timeDeltas: number[];
}

const [dir, ...rest] = process.argv.slice(2);
if (!dir) throw new Error("usage: profile-top.ts DIR [--top N]");
const top = Number(rest[rest.indexOf("--top") + 1] ?? 30) || 30;
const byFn = new Map<string, number>();
const byFile = new Map<string, number>();
let total = 0;
for (const f of readdirSync(dir).filter((f) => f.endsWith(".cpuprofile"))) {
  const p = JSON.parse(readFileSync(join(dir, f), "utf8")) as Profile;
  const nodes = new Map(p.nodes.map((n) => [n.id, n]));
  p.samples.forEach((id, i) => {
    const dt = p.timeDeltas[i] ?? 0;
    const n = nodes.get(id)!;
    // Busy time only: a waiting event loop (and the cluster primary) is not cost.
    if (n.callFrame.functionName === "(idle)") return;
    const url = n.callFrame.url.replace(/^file:\/\//, "").replace(/.*\/node_modules\//, "npm:");
    const short = url.replace(/.*\/work\/[^/]+\//, "");
    const fn = `${n.callFrame.functionName || "(anonymous)"} ${short ? `${short}:${n.callFrame.lineNumber + 1}` : ""}`;
    byFn.set(fn, (byFn.get(fn) ?? 0) + dt);
    const file = short || n.callFrame.functionName;
    const key = file.startsWith("npm:")
      ? file
          .split("/")
          .slice(0, file.startsWith("npm:@") ? 2 : 1)
          .join("/")
      : file;
    byFile.set(key, (byFile.get(key) ?? 0) + dt);
    total += dt;
  });
}
const show = (title: string, m: Map<string, number>) => {
  console.log(`\n${title} (of ${(total / 1e6).toFixed(1)} s busy)`);
  for (const [k, v] of [...m].sort((a, b) => b[1] - a[1]).slice(0, top)) {
    console.log(`${((100 * v) / total).toFixed(1).padStart(5)}%  ${k}`);
  }
};
show("self time by function", byFn);
show("self time by file or package", byFile);
