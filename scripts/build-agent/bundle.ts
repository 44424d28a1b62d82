// esbuild step of the single binary: the agent as one ES module (agent.mjs)
// and agent/sea-bootstrap.ts as the CommonJS SEA main (sea-main.cjs).
// agent/sea-bootstrap.ts explains why there are two.
import { build, type Plugin } from 'esbuild';
import { readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { ROOT } from './paths.ts';

export interface Bundles {
  agent: string; // path of agent.mjs
  main: string; // path of sea-main.cjs
  inputs: string[]; // every source file either bundle read, relative to ROOT
}

// Optional native helpers that ws and msgpackr try to require() inside a
// try/catch. They would be probed on disk, which the single binary never
// does: bundle a module that throws as "not installed" instead.
const OPTIONAL_NATIVE = ['bufferutil', 'utf-8-validate', 'msgpackr-extract'];

const optionalNativeAbsent: Plugin = {
  name: 'optional-native-absent',
  setup(b) {
    const filter = new RegExp(`^(${OPTIONAL_NATIVE.join('|')})$`);
    b.onResolve({ filter }, (args) => ({ path: args.path, namespace: 'optional-native-absent' }));
    b.onLoad({ filter: /.*/, namespace: 'optional-native-absent' }, (args) => ({
      contents: `throw Object.assign(new Error(${JSON.stringify(`${args.path} is not part of the single binary`)}), { code: 'MODULE_NOT_FOUND' });`,
      loader: 'js',
    }));
  },
};

// The agent runs from memory (periscope:agent.mjs), so import.meta describes
// nothing useful: give the bundle the executable's location instead (what a
// SEA reports as __filename), and a require() for the CommonJS dependencies'
// builtins.
const ESM_BANNER = [
  'import { createRequire as __periscopeCreateRequire } from "node:module";',
  'import { dirname as __periscopeDirname } from "node:path";',
  'import { pathToFileURL as __periscopePathToFileURL } from "node:url";',
  'const require = __periscopeCreateRequire(process.execPath);',
  'const __periscopeMeta = { url: __periscopePathToFileURL(process.execPath).href, filename: process.execPath, dirname: __periscopeDirname(process.execPath) };',
].join('\n');

function inputsOf(metafile: { inputs: Record<string, unknown> }): string[] {
  // Paths in the metafile are relative to the working directory (ROOT);
  // virtual modules (namespace:path) are not files.
  return Object.keys(metafile.inputs).filter((p) => !/^[a-z-]+:/.test(p));
}

/** Fails on esbuild warnings: each one is something the binary would get wrong at run time. */
function rejectWarnings(what: string, warnings: { text: string; location: { file: string; line: number } | null }[]): void {
  if (warnings.length === 0) return;
  const lines = warnings.map((w) => `  ${w.location ? `${w.location.file}:${w.location.line}: ` : ''}${w.text}`);
  throw new Error(`bundling ${what} gave warnings; fix them (the single binary cannot load anything at run time):\n${lines.join('\n')}`);
}

export async function bundle(outDir: string): Promise<Bundles> {
  const agent = join(outDir, 'agent.mjs');
  const main = join(outDir, 'sea-main.cjs');
  const common = {
    absWorkingDir: ROOT,
    bundle: true,
    platform: 'node',
    target: 'node24',
    metafile: true,
    logLevel: 'silent',
    legalComments: 'eof',
  } as const;

  const agentResult = await build({
    ...common,
    entryPoints: [join(ROOT, 'agent', 'cli.ts')],
    outfile: agent,
    format: 'esm',
    banner: { js: ESM_BANNER },
    define: {
      'import.meta.url': '__periscopeMeta.url',
      'import.meta.filename': '__periscopeMeta.filename',
      'import.meta.dirname': '__periscopeMeta.dirname',
    },
    plugins: [optionalNativeAbsent],
  });
  rejectWarnings('agent/cli.ts', agentResult.warnings);
  // Anything else on import.meta (main, resolve) would silently misbehave.
  const leftover = readFileSync(agent, 'utf8').match(/.*import\.meta\b.*/g);
  if (leftover) throw new Error(`the agent bundle still uses import.meta; handle it in scripts/build-agent/bundle.ts:\n${leftover.slice(0, 5).join('\n')}`);

  const mainResult = await build({
    ...common,
    entryPoints: [join(ROOT, 'agent', 'sea-bootstrap.ts')],
    outfile: main,
    format: 'cjs',
  });
  rejectWarnings('agent/sea-bootstrap.ts', mainResult.warnings);

  const inputs = [...new Set([...inputsOf(agentResult.metafile), ...inputsOf(mainResult.metafile)])].sort();
  return { agent, main, inputs: inputs.map((p) => relative(ROOT, join(ROOT, p))) };
}
