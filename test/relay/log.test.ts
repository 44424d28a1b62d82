// relay/log.ts: the text lines stay what the relay has always printed; JSON
// lines carry the relay id, bound fields and errors, and never secrets.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { closeSync, openSync, readFileSync, rmSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { createLog, logFormatFromEnv, type LogFormat } from '../../relay/log.ts';
import { isPeriscopeError } from '../../shared/errors.ts';

/** A log writing into memory, and the lines it wrote so far. */
function capture(format: LogFormat): { log: ReturnType<typeof createLog>; lines: () => string[] } {
  const sink = new PassThrough();
  let text = '';
  sink.on('data', (b: Buffer) => (text += b.toString()));
  const log = createLog({ relayId: 'relay-a', format, destination: sink });
  return { log, lines: () => text.split('\n').filter((l) => l !== '') };
}

function json(lines: string[]): Record<string, any>[] {
  return lines.map((l) => JSON.parse(l) as Record<string, any>);
}

test('text lines are the ones the relay printed with console.log and console.error', () => {
  const { log, lines } = capture('text');
  log.info('SIGTERM, shutting down');
  log.warn('could not upgrade a password hash (the old one keeps working): nope', { session: 's1' });
  const err = new Error('boom');
  log.error('internal error handling an agent message', { err, agent: 'a1', capture: 'c1' });
  log.child({ session: 's2', request: 'r1' }).error('upgrade failed', { err: 'not an Error' });
  assert.deepEqual(lines().slice(0, 2), [
    'periscope relay: SIGTERM, shutting down',
    'periscope relay: could not upgrade a password hash (the old one keeps working): nope',
  ]);
  // As `${message}: ${err.stack ?? String(err)}` did: the stack spans lines.
  const all = lines().join('\n');
  assert.ok(all.includes(`periscope relay: internal error handling an agent message: ${err.stack}`));
  assert.ok(all.endsWith('periscope relay: upgrade failed: not an Error'));
  assert.doesNotMatch(all, /s1|s2|a1|c1|r1|relay-a/);
});

test('by default text info goes to stdout and the rest to stderr (as console did); JSON all to stderr', () => {
  const script = `
    import { createLog } from ${JSON.stringify(join(import.meta.dirname, '..', '..', 'relay', 'log.ts'))};
    for (const format of ['text', 'json']) {
      const log = createLog({ relayId: 'r', format });
      log.info(format + ' info'); log.warn(format + ' warn'); log.error(format + ' error');
    }`;
  const run = spawnSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8' });
  assert.equal(run.status, 0, run.stderr);
  assert.equal(run.stdout, 'periscope relay: text info\n');
  const err = run.stderr.split('\n').filter((l) => l !== '');
  assert.deepEqual(err.slice(0, 2), ['periscope relay: text warn', 'periscope relay: text error']);
  assert.deepEqual(err.slice(2).map((l) => (JSON.parse(l) as { msg: string }).msg), ['json info', 'json warn', 'json error']);
});

test('text mode is the default format', () => {
  const sink = new PassThrough();
  let text = '';
  sink.on('data', (b: Buffer) => (text += b.toString()));
  createLog({ relayId: 'r', destination: sink }).info('hello');
  assert.equal(text, 'periscope relay: hello\n');
});

test('JSON lines: pino shape with the relay id, fields and errors', () => {
  const { log, lines } = capture('json');
  log.info('listening', { port: 8080 });
  log.warn('slow', { session: 's1' });
  log.error('internal error', { err: new Error('boom'), request: 'r1' });
  const [info, warn, error] = json(lines());
  assert.equal(info!.level, 30);
  assert.equal(warn!.level, 40);
  assert.equal(error!.level, 50);
  for (const line of [info!, warn!, error!]) {
    assert.equal(line.relay, 'relay-a');
    assert.equal(typeof line.time, 'number');
    assert.equal(line.pid, process.pid);
  }
  assert.equal(info!.msg, 'listening');
  assert.equal(info!.port, 8080);
  assert.equal(warn!.session, 's1');
  assert.equal(error!.request, 'r1');
  assert.equal(error!.err.message, 'boom');
  assert.equal(error!.err.type, 'Error');
  assert.match(error!.err.stack, /^Error: boom\n/);
});

test('child() binds fields to every line, nested children add to them', () => {
  const { log, lines } = capture('json');
  const session = log.child({ session: 's1' });
  const capture1 = session.child({ capture: 'c1', agent: 'a1' });
  session.info('opened');
  capture1.warn('chunk late', { request: 'r9' });
  log.info('unrelated');
  const [opened, late, unrelated] = json(lines());
  assert.equal(opened!.session, 's1');
  assert.equal(opened!.capture, undefined);
  assert.deepEqual([late!.session, late!.capture, late!.agent, late!.request, late!.relay], ['s1', 'c1', 'a1', 'r9', 'relay-a']);
  assert.equal(unrelated!.session, undefined);
});

test('JSON lines never carry tokens, passwords, credentials, authorization or cookies', () => {
  const { log, lines } = capture('json');
  log.child({ token: 'tok-bound' }).info('joined', {
    password: 'pw-1',
    Password: 'pw-2',
    credential: 'cred-1',
    headers: { authorization: 'Bearer abc', cookie: 'periscope_session=xyz', Authorization: 'Bearer def' },
    req: { headers: { cookie: 'deep-cookie' } },
    session: 's1',
  });
  const text = lines().join('\n');
  for (const secret of ['tok-bound', 'pw-1', 'pw-2', 'cred-1', 'Bearer abc', 'Bearer def', 'periscope_session=xyz', 'deep-cookie']) {
    assert.ok(!text.includes(secret), `${secret} leaked into ${text}`);
  }
  const [line] = json(lines());
  assert.equal(line!.token, '[Redacted]');
  assert.equal(line!.headers.authorization, '[Redacted]');
  assert.equal(line!.req.headers.cookie, '[Redacted]');
  assert.equal(line!.session, 's1');
});

test('a file descriptor destination is written synchronously', () => {
  const dir = mkdtempSync(join(tmpdir(), 'periscope-log-test-'));
  try {
    const path = join(dir, 'log');
    for (const format of ['text', 'json'] as const) {
      const fd = openSync(path, 'w');
      createLog({ relayId: 'r', format, destination: fd }).warn('on disk');
      // Read before closing: nothing is left in a buffer.
      const text = readFileSync(path, 'utf8');
      closeSync(fd);
      if (format === 'text') assert.equal(text, 'periscope relay: on disk\n');
      else assert.equal((JSON.parse(text) as { msg: string }).msg, 'on disk');
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('PERISCOPE_LOG_FORMAT: text by default, json or text when set, anything else refused', () => {
  assert.equal(logFormatFromEnv({}), 'text');
  assert.equal(logFormatFromEnv({ PERISCOPE_LOG_FORMAT: '' }), 'text');
  assert.equal(logFormatFromEnv({ PERISCOPE_LOG_FORMAT: 'text' }), 'text');
  assert.equal(logFormatFromEnv({ PERISCOPE_LOG_FORMAT: 'json' }), 'json');
  for (const bad of ['JSON', 'pretty', 'logfmt']) {
    assert.throws(
      () => logFormatFromEnv({ PERISCOPE_LOG_FORMAT: bad }),
      (err: unknown) => isPeriscopeError(err, 'BAD_CONFIG') && err.message.includes('PERISCOPE_LOG_FORMAT') && err.message.includes('text, json') && err.message.includes(bad),
    );
  }
  assert.throws(() => createLog({ relayId: 'r', format: 'yaml' as LogFormat }), /log format must be one of text, json/);
});
