// Entry point of the single binary (dist/periscope-agent-linux-x64), a Node
// Single Executable Application. scripts/build-agent/ bundles this file to
// CommonJS as the SEA main (a Node 24 SEA main must be CommonJS) and embeds
// two assets beside it:
//
//   agent.mjs              the whole agent: agent/cli.ts bundled to one ES
//                          module (the CLI uses top-level await, which a
//                          CommonJS bundle cannot express)
//   periscope_native.node  the CPython stack reader addon
//
// The binary runs inside customers' containers, whose environment was made
// for their own services, with the right to read other processes' memory.
// Nothing in that environment may make it run code it was not built with.
// Node's start-up is covered by the SEA config (scripts/build-agent/sea.ts):
// "execArgvExtension": "none" ignores NODE_OPTIONS, --openssl-config
// overrides OPENSSL_CONF (which can load a shared library), and the code
// cache built into the blob keeps NODE_COMPILE_CACHE away from this file.
// Here we
//   1. restart once, with the same pid, without the variables Node acts on
//      before this file runs (startWithoutNodeVariables);
//   2. write the addon to a private directory (dlopen needs a file) and point
//      PERISCOPE_NATIVE at it for agent/native.ts; it is deleted as soon as
//      it is mapped, or at exit if it never is;
//   3. evaluate agent.mjs from memory as an ES module, and refuse every
//      other module load from disk (NODE_PATH, node_modules).
import { mkdtempSync, realpathSync, rmSync, writeFileSync } from 'node:fs';
import { isBuiltin, registerHooks } from 'node:module';
import { homedir, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { getAsset, getRawAsset, isSea } from 'node:sea';
import { pathToFileURL } from 'node:url';
import { constants as vmConstants, runInThisContext } from 'node:vm';

const ADDON_ASSET = 'periscope_native.node';
const AGENT_ASSET = 'agent.mjs';

/**
 * Variables Node reads at start-up, before any JavaScript runs, that feed it
 * code or write ours out: NODE_COMPILE_CACHE (V8 code cache for the agent
 * module: V8 trusts it, so a crafted entry would run its own bytecode as
 * ours), NODE_ICU_DATA
 * (ICU data files), NODE_V8_COVERAGE (our coverage written to their
 * directory). NODE_REPL_EXTERNAL_MODULE makes Node itself refuse to start
 * (exit 9, "can't be used with kDisableNodeOptionsEnv"); nothing can be done
 * about it from here.
 */
const STARTUP_VARIABLES = ['NODE_COMPILE_CACHE', 'NODE_ICU_DATA', 'NODE_V8_COVERAGE'];

function fail(message: string): never {
  process.stderr.write(`periscope: ${message}\n`);
  process.exit(1);
}

/**
 * Restarts this process (execve: same pid, same arguments) without those
 * variables. They are not restored afterwards, so the programs we start
 * (`record -- CMD`) do not see them either: they only matter to Node, and a
 * Worker we might start one day would read them again.
 */
function startWithoutNodeVariables(): void {
  const present = STARTUP_VARIABLES.filter((name) => process.env[name] !== undefined);
  if (present.length === 0) return;
  const env: NodeJS.ProcessEnv = { ...process.env };
  for (const name of present) delete env[name];
  process.execve!(process.execPath, [process.argv0, ...process.argv.slice(2)], env);
}

/**
 * Where the addon may go, best first. dlopen fails on a filesystem mounted
 * noexec, which /tmp and /dev/shm often are in hardened containers; the next
 * candidate is tried then.
 */
function addonDirCandidates(): string[] {
  const dirs = [tmpdir(), '/dev/shm', '/var/tmp', process.env.XDG_RUNTIME_DIR, join(homedir(), '.cache'), dirname(process.execPath)];
  return [...new Set(dirs.filter((d): d is string => typeof d === 'string' && d.startsWith('/')))];
}

interface Extracted {
  dir: string;
  file: string; // a real path: what require() hands to process.dlopen
}

/** Writes the addon into a fresh 0700 directory under `parent`; undefined if we cannot. */
function writeAddon(parent: string, bytes: Uint8Array): Extracted | undefined {
  let dir: string | undefined;
  try {
    dir = realpathSync(mkdtempSync(join(parent, 'periscope-')));
    const file = join(dir, ADDON_ASSET);
    // O_EXCL ('wx') in a directory only we can write: nobody can substitute the file.
    writeFileSync(file, bytes, { mode: 0o700, flag: 'wx' });
    return { dir, file };
  } catch {
    if (dir) rmSync(dir, { recursive: true, force: true });
    return undefined;
  }
}

/** Extracts the addon, sets PERISCOPE_NATIVE, and returns its path. */
function provideAddon(): string {
  const bytes = new Uint8Array(getRawAsset(ADDON_ASSET));
  const candidates = addonDirCandidates();
  let current: Extracted | undefined;
  const next = (): boolean => {
    for (current = undefined; !current && candidates.length > 0; ) current = writeAddon(candidates.shift()!, bytes);
    return current !== undefined;
  };
  const remove = () => {
    if (current) rmSync(current.dir, { recursive: true, force: true });
  };
  if (!next()) fail(`cannot write the native reader to any of ${addonDirCandidates().join(', ')}; set TMPDIR to a writable directory`);
  const announced = current!.file;
  process.env.PERISCOPE_NATIVE = announced;
  process.once('exit', remove);

  // require() of a .node file ends in process.dlopen(module, realPath).
  const dlopen = process.dlopen;
  process.dlopen = function dlopenPeriscopeAddon(module: object, filename: string, flags?: number): void {
    if (filename !== announced) throw new Error(`the periscope single binary loads no other native code (refused ${filename})`);
    try {
      for (;;) {
        try {
          const file = current!.file;
          return flags === undefined ? dlopen.call(process, module, file) : dlopen.call(process, module, file, flags);
        } catch (err) {
          const noexec = err instanceof Error && /failed to map segment|Operation not permitted/.test(err.message);
          remove();
          if (!noexec || !next()) throw err;
        }
      }
    } finally {
      remove(); // mapped (or failed for good): the file is no longer needed
      current = undefined;
      process.dlopen = dlopen;
    }
  };
  return announced;
}

/** The agent module's URL: served from memory by the load hook below. */
const AGENT_URL = 'periscope:agent.mjs';

/**
 * Module hooks (they see both require() and import()):
 * - the agent module comes from the SEA asset, not from disk (a custom URL
 *   rather than a data: URL: the loader handles a 500 KB URL slowly);
 * - nothing else but builtins and the addon may load. The bundle needs
 *   nothing from disk, yet a customer's environment may point Node at code
 *   meant for their own services: NODE_PATH, a node_modules beside the
 *   binary, the optional native helpers that ws and msgpackr probe for.
 */
function serveAgentAndSeal(addon: string): void {
  const allowed = new Set([addon, pathToFileURL(addon).href]);
  registerHooks({
    resolve(specifier, context, nextResolve) {
      if (specifier === AGENT_URL) return { url: AGENT_URL, format: 'module', shortCircuit: true };
      if (isBuiltin(specifier) || allowed.has(specifier)) return nextResolve(specifier, context);
      throw Object.assign(new Error(`Cannot find module '${specifier}': the periscope single binary loads no code from disk`), {
        code: 'MODULE_NOT_FOUND',
      });
    },
    load(url, context, nextLoad) {
      if (url === AGENT_URL) return { format: 'module', source: getAsset(AGENT_ASSET, 'utf8'), shortCircuit: true };
      return nextLoad(url, context);
    },
  });
}

if (!isSea()) fail('agent/sea-bootstrap.ts runs only inside the single binary; run agent/cli.ts instead');
startWithoutNodeVariables();
serveAgentAndSeal(provideAddon());

// The SEA main is compiled without an import() handler; a vm script with the
// main context's default loader has one.
const importModule = runInThisContext('(specifier) => import(specifier)', {
  filename: 'periscope-sea-bootstrap',
  importModuleDynamically: vmConstants.USE_MAIN_CONTEXT_DEFAULT_LOADER,
}) as (specifier: string) => Promise<unknown>;
importModule(AGENT_URL).catch((err: unknown) => {
  // What Node prints for an uncaught error in a main module, and its exit code.
  console.error(err);
  process.exitCode = 1;
});
