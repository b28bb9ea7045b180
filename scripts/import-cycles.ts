// Import cycles between the source files of the packages: every relative import, export-from and
// `import type` in packages/*/src/**/*.ts is an edge (a type-only cycle still ties two modules together).
// Run it alone with `npx tsx scripts/import-cycles.ts`; scripts/import-cycles.test.ts keeps the count at 0.
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { dirname, join, relative, resolve } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import ts from "typescript";

/** Every .ts file under `dir` (declaration files aside). */
function sourceFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true, recursive: true })
    .filter((e) => e.isFile() && e.name.endsWith(".ts") && !e.name.endsWith(".d.ts"))
    .map((e) => join(e.parentPath, e.name));
}

/** The file a relative specifier names ("./x.js" is ./x.ts, "./dir" is ./dir/index.ts), if it exists. */
function resolveSpecifier(from: string, spec: string): string | undefined {
  const base = resolve(dirname(from), spec);
  const stem = base.replace(/\.(m|c)?js$/, "");
  return [`${stem}.ts`, base, join(base, "index.ts")].find((p) => p.endsWith(".ts") && existsSync(p));
}

/** The relative-import graph of `files`: file to the files it imports. */
export function importGraph(files: readonly string[]): Map<string, string[]> {
  const graph = new Map<string, string[]>();
  for (const file of files) {
    const info = ts.preProcessFile(readFileSync(file, "utf8"), true, true);
    const targets = info.importedFiles
      .filter((f) => f.fileName.startsWith("."))
      .map((f) => resolveSpecifier(file, f.fileName))
      .filter((f): f is string => f !== undefined);
    graph.set(file, [...new Set(targets)]);
  }
  return graph;
}

/** One cycle per strongly connected component (Tarjan), as a path that starts and ends on the same file. */
export function findCycles(graph: Map<string, string[]>): string[][] {
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const onStack = new Set<string>();
  const cycles: string[][] = [];
  const visit = (v: string): void => {
    index.set(v, index.size);
    low.set(v, index.get(v)!);
    stack.push(v);
    onStack.add(v);
    for (const w of graph.get(v) ?? []) {
      if (!index.has(w)) {
        visit(w);
        low.set(v, Math.min(low.get(v)!, low.get(w)!));
      } else if (onStack.has(w)) low.set(v, Math.min(low.get(v)!, index.get(w)!));
    }
    if (low.get(v) !== index.get(v)) return;
    const component = new Set<string>();
    let w: string;
    do {
      w = stack.pop()!;
      onStack.delete(w);
      component.add(w);
    } while (w !== v);
    if (component.size > 1 || graph.get(v)?.includes(v)) cycles.push(shortestCycle(graph, component));
  };
  for (const v of [...graph.keys()].sort()) if (!index.has(v)) visit(v);
  return cycles;
}

/** The shortest way from the component's first file back to itself, inside the component (BFS). */
function shortestCycle(graph: Map<string, string[]>, component: Set<string>): string[] {
  const start = [...component].sort()[0]!;
  const parent = new Map<string, string>();
  const queue = [start];
  for (const v of queue) {
    for (const w of graph.get(v) ?? []) {
      if (!component.has(w)) continue;
      if (w === start) {
        const back: string[] = [];
        for (let u = v; u !== start; u = parent.get(u)!) back.push(u);
        return [start, ...back.reverse(), start];
      }
      if (!parent.has(w)) {
        parent.set(w, v);
        queue.push(w);
      }
    }
  }
  return [start, start];
}

/** The import cycles in packages/*\/src of the repository at `root`, file paths relative to it. */
export function importCycles(root: string): string[][] {
  const packages = join(root, "packages");
  const files = readdirSync(packages)
    .map((p) => join(packages, p, "src"))
    .filter((dir) => existsSync(dir))
    .flatMap(sourceFiles);
  return findCycles(importGraph(files)).map((cycle) => cycle.map((f) => relative(root, f)));
}

if (process.argv[1] && import.meta.url === pathToFileURL(resolve(process.argv[1])).href) {
  const cycles = importCycles(fileURLToPath(new URL("..", import.meta.url)));
  for (const cycle of cycles) console.log(`import cycle: ${cycle.join(" -> ")}`);
  console.log(`${cycles.length} import cycle(s)`);
  process.exitCode = cycles.length ? 1 : 0;
}
