// Python test targets (test/targets/*.py): spawn one, wait for the ground
// truth it writes (atomically) to a file named on its command line, and kill
// it -- with every process it started -- when the test ends.
//
// Targets run in their own process group (detached), so kill() takes their
// children too; anything still alive when this process exits is SIGKILLed by
// an exit hook; and the targets themselves set PR_SET_PDEATHSIG and have a
// bounded lifetime, so a crashed runner leaves nothing behind either.
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestContext } from 'node:test';
import type { Python } from './pythons.ts';

export const TARGETS_DIR = join(import.meta.dirname, '..', 'targets');

const live = new Set<Target>();
let hooked = false;

function hookExit(): void {
  if (hooked) return;
  hooked = true;
  process.on('exit', () => {
    for (const target of live) target.killNow();
  });
}

/** Environment for targets: UTF-8 everywhere (3.6 would otherwise take the
 * C locale's ASCII as filesystem encoding and fail to import 中文模块.py). */
function targetEnv(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, LC_ALL: 'C.UTF-8', LANG: 'C.UTF-8' };
  for (const key of Object.keys(env)) if (key.startsWith('PYTHON')) delete env[key];
  return env;
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

export interface StartOptions {
  /** Arguments after the truth-file path. */
  args?: string[];
  /** Registers kill() with t.after (recommended). */
  t?: TestContext;
}

export class Target {
  readonly python: Python;
  readonly script: string;
  readonly dir: string;
  readonly truthPath: string;
  readonly child: ChildProcess;
  readonly pid: number;
  exitCode: number | null = null;
  exitSignal: NodeJS.Signals | null = null;
  exited = false;
  private readonly exitPromise: Promise<void>;
  private output = '';
  private cleaned = false;

  constructor(python: Python, script: string, options: StartOptions = {}) {
    this.python = python;
    this.script = join(TARGETS_DIR, script);
    this.dir = mkdtempSync(join(tmpdir(), 'periscope-target-'));
    this.truthPath = join(this.dir, 'truth.json');
    // -B: no .pyc next to the targets; -E/-s: no environment or user site
    // influence; -u: unbuffered, so a failing target's stderr is complete.
    this.child = spawn(python.exe, ['-B', '-E', '-s', '-u', this.script, this.truthPath, ...(options.args ?? [])], {
      cwd: this.dir,
      env: targetEnv(),
      detached: true,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    if (this.child.pid === undefined) throw new Error(`could not start ${python.exe} ${script}`);
    this.pid = this.child.pid;
    const keep = (chunk: Buffer) => {
      if (this.output.length < 64 * 1024) this.output += chunk.toString('utf8');
    };
    this.child.stdout?.on('data', keep);
    this.child.stderr?.on('data', keep);
    this.exitPromise = new Promise((resolve) => {
      this.child.on('exit', (code, signal) => {
        this.exited = true;
        this.exitCode = code;
        this.exitSignal = signal;
        resolve();
      });
      this.child.on('error', (err) => {
        this.output += `\n[spawn error] ${err.message}`;
        this.exited = true;
        resolve();
      });
    });
    live.add(this);
    hookExit();
    options.t?.after(() => this.kill());
  }

  /** What the target printed (stdout and stderr, capped), for failure messages. */
  get log(): string {
    return this.output;
  }

  describe(): string {
    const status = this.exited ? `exited (code ${this.exitCode}, signal ${this.exitSignal})` : 'running';
    return `${this.python.label} ${this.script} pid ${this.pid}: ${status}${this.output ? `\n--- target output ---\n${this.output}` : ''}`;
  }

  /** Polls for the ground-truth file and parses it. Fails early if the target dies. */
  async truth<T>(timeoutMs = 30_000, path = this.truthPath): Promise<T> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      if (existsSync(path)) return JSON.parse(readFileSync(path, 'utf8')) as T;
      if (this.exited) throw new Error(`target died before writing its ground truth: ${this.describe()}`);
      if (Date.now() > deadline) throw new Error(`no ground truth after ${timeoutMs} ms: ${this.describe()}`);
      await sleep(20);
    }
  }

  /** Resolves when the target has exited (and has been reaped). */
  waitExit(): Promise<void> {
    return this.exitPromise;
  }

  /** SIGKILL the target's whole process group, synchronously. */
  killNow(): void {
    try {
      process.kill(-this.pid, 'SIGKILL');
    } catch {
      // ESRCH: the group is gone already.
    }
    live.delete(this);
    if (!this.cleaned) {
      this.cleaned = true;
      rmSync(this.dir, { recursive: true, force: true });
    }
  }

  /** Kills the target and its children and waits for the target to be reaped. */
  async kill(): Promise<void> {
    this.killNow();
    await Promise.race([this.exitPromise, sleep(5_000)]);
  }
}

export async function startTarget(python: Python, script: string, options: StartOptions = {}): Promise<Target> {
  const target = new Target(python, script, options);
  await new Promise<void>((resolve, reject) => {
    target.child.once('spawn', () => resolve());
    target.child.once('error', reject);
  });
  return target;
}

/** Scheduler state letters (R, S, D, T, t, Z, ...) of every thread of a process. */
export function threadStates(pid: number): Map<number, string> {
  const states = new Map<number, string>();
  let tids: string[] = [];
  try {
    tids = readdirSync(`/proc/${pid}/task`);
  } catch {
    return states;
  }
  for (const tid of tids) {
    try {
      const stat = readFileSync(`/proc/${pid}/task/${tid}/stat`, 'utf8');
      // "tid (comm) S ..." -- comm may contain spaces and parentheses.
      const state = stat.slice(stat.lastIndexOf(')') + 2).split(' ')[0];
      if (state) states.set(Number(tid), state);
    } catch {
      // the thread went away
    }
  }
  return states;
}
