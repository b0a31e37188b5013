/**
 * Summarize a V8 `.cpuprofile` (from `npm run bench -- --cpu-prof`): where the process spent its
 * CPU, by module group (app code, each package, node internals, GC, idle) and by function, both
 * self time and inclusive time (each function counted once per sample however deep it recurses).
 *
 *   node --import tsx bench/profile-summary.ts <file.cpuprofile> [--top N] [--filter TEXT]
 *
 * `--filter` restricts the function table to frames whose name or URL contains TEXT.
 */
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
}
interface Profile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
  startTime: number;
  endTime: number;
}

/** A coarse owner of a frame: an app or package of ours, a dependency, node itself, or V8 pseudo frames. */
export function moduleGroup(url: string, functionName: string): string {
  if (!url) return `(${functionName || 'anonymous'})`.replace(/^\(\((.*)\)\)$/, '($1)');
  const pnpm = /node_modules\/\.pnpm\/([^/]+)\/node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url);
  if (pnpm) return pnpm[2]!;
  const plain = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url);
  if (plain) return plain[1]!;
  const ours = /\/(apps|packages)\/([^/]+)\//.exec(url);
  if (ours) return `${ours[1]}/${ours[2]}`;
  if (url.startsWith('node:')) return 'node:internal';
  return url.replace(/^file:\/\//, '');
}

function main(): void {
  const { values, positionals } = parseArgs({ allowPositionals: true, options: { top: { type: 'string', default: '25' }, filter: { type: 'string' } } });
  const file = positionals[0];
  if (!file) throw new Error('usage: profile-summary.ts <file.cpuprofile> [--top N] [--filter TEXT]');
  const top = Number(values.top);
  const profile = JSON.parse(readFileSync(file, 'utf8')) as Profile;
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const parent = new Map<number, number>();
  for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id);

  const key = (n: ProfileNode) =>
    `${n.callFrame.functionName || '(anonymous)'} ${n.callFrame.url.replace(/^.*\/(node_modules\/\.pnpm\/[^/]+\/node_modules\/|apps\/|packages\/)/, '')}:${n.callFrame.lineNumber + 1}`;
  const selfByFn = new Map<string, number>();
  const inclByFn = new Map<string, number>();
  const selfByGroup = new Map<string, number>();
  const add = (m: Map<string, number>, k: string, v: number) => m.set(k, (m.get(k) ?? 0) + v);
  let total = 0;
  profile.samples.forEach((id, i) => {
    const dt = (profile.timeDeltas[i + 1] ?? profile.timeDeltas[i] ?? 0) / 1000;
    const node = byId.get(id)!;
    total += dt;
    add(selfByFn, key(node), dt);
    add(selfByGroup, moduleGroup(node.callFrame.url, node.callFrame.functionName), dt);
    const seen = new Set<string>();
    for (let cur: number | undefined = id; cur !== undefined; cur = parent.get(cur)) {
      const k = key(byId.get(cur)!);
      if (!seen.has(k)) {
        seen.add(k);
        add(inclByFn, k, dt);
      }
    }
  });

  const idle = selfByGroup.get('(idle)') ?? 0;
  const busy = total - idle;
  const pct = (v: number, of: number) => `${((100 * v) / of).toFixed(1).padStart(5)}%`;
  const show = (title: string, m: Map<string, number>, of: number, filter?: string) => {
    console.log(`\n${title}`);
    const rows = [...m.entries()]
      .filter(([k]) => !filter || k.includes(filter))
      .sort((a, b) => b[1] - a[1])
      .slice(0, top);
    for (const [k, v] of rows) console.log(`${v.toFixed(0).padStart(8)} ms ${pct(v, of)}  ${k}`);
  };
  console.log(`${file}\nwall ${(total / 1000).toFixed(2)} s, busy ${(busy / 1000).toFixed(2)} s (${pct(busy, total).trim()}), idle ${(idle / 1000).toFixed(2)} s`);
  show('self time by module group (% of busy)', new Map([...selfByGroup].filter(([k]) => k !== '(idle)')), busy);
  show('self time by function (% of busy)', selfByFn, busy, values.filter);
  show('inclusive time by function (% of busy)', inclByFn, busy, values.filter);
}

main();
