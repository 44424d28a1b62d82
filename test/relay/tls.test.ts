// With PERISCOPE_TLS_CERT / PERISCOPE_TLS_KEY the relay serves https and wss
// itself, marks its cookie Secure and sends HSTS.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { request } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ADMIN_PASSWORD, connectAgent, removeDataDir, startRelay, type RelayProcess } from '../helpers/relay.ts';

let relay: RelayProcess | undefined;
let certDir: string;
let ca: Buffer;
let skip: string | false = false;

before(async () => {
  certDir = mkdtempSync(join(tmpdir(), 'periscope-tls-'));
  try {
    execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-days', '1', '-subj', '/CN=localhost',
      '-addext', 'subjectAltName=DNS:localhost,IP:127.0.0.1', '-keyout', join(certDir, 'key.pem'), '-out', join(certDir, 'cert.pem')], { stdio: 'ignore' });
  } catch {
    skip = 'openssl is not installed';
    return;
  }
  ca = readFileSync(join(certDir, 'cert.pem'));
  relay = await startRelay({ env: { PERISCOPE_TLS_CERT: join(certDir, 'cert.pem'), PERISCOPE_TLS_KEY: join(certDir, 'key.pem') } });
});

after(async () => {
  await relay?.stop();
  if (relay) removeDataDir(relay.dataDir);
  rmSync(certDir, { recursive: true, force: true });
});

function https(method: string, path: string, body?: unknown, headers: Record<string, string> = {}): Promise<{ status: number; headers: Record<string, string | string[] | undefined>; json: any }> {
  return new Promise((resolve, reject) => {
    const req = request(`${relay!.url}${path}`, { method, ca, headers: { ...(body ? { 'content-type': 'application/json' } : {}), ...headers } }, (res) => {
      let text = '';
      res.on('data', (b: Buffer) => (text += b.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, json: text ? JSON.parse(text) : undefined }));
    });
    req.on('error', reject);
    req.end(body ? JSON.stringify(body) : undefined);
  });
}

test('https and wss with a Secure cookie and HSTS', async (t) => {
  if (skip) return t.skip(skip);
  assert.match(relay!.url, /^https:\/\/127\.0\.0\.1:\d+$/);
  assert.match(relay!.output(), /open https:\/\/localhost:\d+/);
  const login = await https('POST', '/api/login', { username: 'admin', password: ADMIN_PASSWORD });
  assert.equal(login.status, 200);
  const cookie = String(login.headers['set-cookie']);
  assert.match(cookie, /; Secure/);
  assert.match(String(login.headers['strict-transport-security']), /max-age=/);
  const sessionCookie = /periscope_session=[^;]+/.exec(cookie)![0];
  const headers = { cookie: sessionCookie, 'x-csrf-token': login.json.csrfToken, origin: relay!.origin };
  const session = await https('POST', '/api/sessions', { name: 'tls' }, headers);
  assert.equal(session.status, 201);
  assert.match(session.json.commands.curl, /^curl -fsSL https:\/\/localhost:\d+\/j\//);
  const agent = await connectAgent(relay!, session.json.joinToken, { ws: { ca } });
  assert.match(agent.ws.url, /^wss:/);
  const welcome = await agent.hello();
  assert.ok(welcome.credential);
  agent.close();
});
