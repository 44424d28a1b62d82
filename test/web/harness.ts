// What the browser tests stand on: a freshly built web client, a real relay
// process (test/helpers/relay.ts: PORT=0, its own data dir), a real agent
// (`bin/periscope connect`), real Python targets, and headless Chromium driven
// by playwright-core.
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestContext } from 'node:test';
import { type BrowserContext, type Page, chromium } from 'playwright-core';
import { buildWeb } from '../../scripts/build-web.ts';
import { PERISCOPE, ROOT } from '../helpers/periscope.ts';
import { startRelay, type RelayProcess } from '../helpers/relay.ts';

export const CHROMIUM = process.env.PERISCOPE_CHROMIUM || '/usr/bin/chromium';
export const ARTIFACTS = join(ROOT, 'test-artifacts');

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

/** A relay (test/helpers/relay.ts) serving a freshly built web client, stopped when the test ends. */
export async function startWebRelay(t: TestContext, env: Record<string, string> = {}): Promise<RelayProcess> {
  await ensureWebBuilt();
  return startRelay({ t, env: { PERISCOPE_HEARTBEAT_SECONDS: '5', ...env } });
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

/** A fresh browser on the relay's page, signed in as its admin, with the page watched (see watchPage). */
export async function adminPage(t: TestContext, relay: Pick<RelayProcess, 'url' | 'adminPassword'>, viewport?: { width: number; height: number }) {
  const context = await launchBrowser(t, viewport);
  const page = await context.newPage();
  const seen = watchPage(page);
  await page.goto(`${relay.url}/`);
  await signIn(page, 'admin', relay.adminPassword);
  return { context, page, seen };
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
