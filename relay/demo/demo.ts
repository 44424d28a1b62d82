// `npm run demo` (or `npm start -- --demo`): a relay, a sample Python service
// under load and a local agent connected to it, so a newcomer sees live top
// and a flame graph in one command. Everything lives in a fresh temporary
// data dir and stops with Ctrl-C.
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { loadConfig } from '../config.ts';
import { startRelay } from '../relay.ts';

const root = join(import.meta.dirname, '..', '..');

function pickPython(): string {
  for (const candidate of ['/usr/bin/python3', '/usr/local/bin/python3', '/root/.pyenv/versions/3.12.1/bin/python']) {
    if (existsSync(candidate)) return candidate;
  }
  return 'python3';
}

async function api(base: string, path: string, init: { method?: string; body?: unknown; cookie?: string; csrf?: string } = {}) {
  const res = await fetch(`${base}${path}`, {
    method: init.method ?? 'GET',
    headers: {
      Origin: base,
      'Content-Type': 'application/json',
      ...(init.cookie ? { Cookie: init.cookie } : {}),
      ...(init.csrf ? { 'X-CSRF-Token': init.csrf } : {}),
    },
    body: init.body === undefined ? undefined : JSON.stringify(init.body),
  });
  if (!res.ok) throw new Error(`demo: ${init.method ?? 'GET'} ${path} failed with ${res.status}: ${await res.text()}`);
  return { json: (await res.json()) as Record<string, unknown>, cookie: res.headers.get('set-cookie')?.split(';')[0] };
}

export async function runDemo(): Promise<void> {
  const dataDir = mkdtempSync(join(tmpdir(), 'periscope-demo-'));
  const password = randomBytes(9).toString('base64url');
  const config = loadConfig({ ...process.env, PERISCOPE_DATA_DIR: dataDir, PERISCOPE_ADMIN_PASSWORD: password });
  const relay = await startRelay(config);
  const children: ChildProcess[] = [];
  const stop = async () => {
    for (const c of children) c.kill('SIGINT');
    await relay.close().catch(() => undefined);
    rmSync(dataDir, { recursive: true, force: true });
    process.exit(0);
  };
  process.on('SIGINT', () => void stop());
  process.on('SIGTERM', () => void stop());

  const service = spawn(pickPython(), [join(import.meta.dirname, 'sample_service.py')], { stdio: ['ignore', 'ignore', 'inherit'] });
  children.push(service);

  const base = relay.url;
  const login = await api(base, '/api/login', { method: 'POST', body: { username: 'admin', password } });
  const cookie = login.cookie!;
  const me = await api(base, '/api/me', { cookie });
  const csrf = me.json.csrfToken as string;
  const session = await api(base, '/api/sessions', { method: 'POST', body: { name: 'demo' }, cookie, csrf });

  // The agent gets its token through the environment, as customers' agents do.
  const agent = spawn(join(root, 'bin', 'periscope'), ['connect', base, '--pids', String(service.pid)], {
    stdio: ['ignore', 'ignore', 'inherit'],
    env: { ...process.env, PERISCOPE_TOKEN: session.json.joinToken as string },
  });
  children.push(agent);
  agent.on('exit', (code) => console.log(`demo: the agent exited (${code})`));
  service.on('exit', (code) => console.log(`demo: the sample service exited (${code})`));

  console.log('');
  console.log('Periscope demo is running.');
  console.log(`  open      ${relay.publicUrl}`);
  console.log(`  sign in   admin / ${password}`);
  console.log(`  then open the "demo" session, pick the sample service (pid ${service.pid}) and choose top or record.`);
  console.log('  Ctrl-C stops the relay, the agent and the service.');
}
