// Agents and captures: start, list, inspect, stop, download. Each lookup goes
// through the session the object belongs to; non-members get 404.
import { Hono, type Context } from 'hono';
import type { AppEnv, RelayServices } from '../context.ts';
import { notFound } from '../api-error.ts';
import { PeriscopeError } from '../../../shared/errors.ts';
import { currentAuth, jsonBody, requireUser } from '../guards.ts';
import { captureSpecFromRequest } from '../../captures/capture-request.ts';
import { captureView } from '../../captures/capture-view.ts';
import { DEFAULT_FORMAT, FORMATS, FORMAT_NAMES, isFormat } from '../../../shared/export/formats.ts';
import type { ExportOptions } from '../../../shared/export/options.ts';
import type { AgentRecord } from '../../store/agents.ts';
import type { CaptureRecord } from '../../store/captures.ts';
import type { User } from '../../store/users.ts';

function boolParam(c: Context<AppEnv>, name: string, fallback: boolean): boolean {
  const v = c.req.query(name);
  if (v === undefined) return fallback;
  if (v === '' || v === '1' || v === 'true' || v === 'yes') return true;
  if (v === '0' || v === 'false' || v === 'no') return false;
  throw new PeriscopeError('BAD_ARGUMENT', `${name} must be true or false; got ${JSON.stringify(v)}`);
}

export function captureRoutes(s: RelayServices): Hono<AppEnv> {
  const app = new Hono<AppEnv>();
  app.use('/api/agents/*', requireUser(s));
  app.use('/api/captures/*', requireUser(s));

  const agentFor = (id: string, user: User): AgentRecord => {
    const agent = s.store.agents.byId(id);
    if (!agent || !s.store.sessions.isMember(agent.sessionId, user.id)) throw notFound('agent');
    return agent;
  };
  const captureFor = (id: string, user: User): CaptureRecord => {
    const capture = s.captures.get(id);
    if (!capture || !s.store.sessions.isMember(capture.sessionId, user.id)) throw notFound('capture');
    return capture;
  };

  app.get('/api/agents/:id', (c) => c.json(s.agentHub.view(agentFor(c.req.param('id'), currentAuth(c).user))));

  app.post('/api/agents/:id/processes/refresh', (c) => {
    const { user } = currentAuth(c);
    const agent = agentFor(c.req.param('id'), user);
    s.sessions.requireOpen(s.sessions.forMember(agent.sessionId, user));
    if (!s.agentHub.requestProcesses(agent.id)) throw new PeriscopeError('AGENT_OFFLINE', `agent ${agent.host} is not connected`);
    return c.json({ requested: true }, 202);
  });

  app.post('/api/agents/:id/captures', async (c) => {
    const { user } = currentAuth(c);
    const agent = agentFor(c.req.param('id'), user);
    s.sessions.requireOpen(s.sessions.forMember(agent.sessionId, user));
    const spec = captureSpecFromRequest(await jsonBody(c));
    const capture = s.captures.start(agent, spec, user.username);
    return c.json(captureView(capture), 201);
  });

  app.get('/api/captures/:id', (c) => {
    const capture = captureFor(c.req.param('id'), currentAuth(c).user);
    return c.json({ ...captureView(capture), ...(capture.kind === 'dump' ? { result: capture.result } : {}) });
  });

  app.post('/api/captures/:id/stop', (c) => {
    const { user } = currentAuth(c);
    const capture = captureFor(c.req.param('id'), user);
    return c.json(captureView(s.captures.stop(capture.id, user.username)));
  });

  app.get('/api/captures/:id/download', async (c) => {
    const { user } = currentAuth(c);
    const capture = captureFor(c.req.param('id'), user);
    const stamp = new Date(capture.startedAt).toISOString().slice(0, 19).replace(/:/g, '-');
    if (capture.kind === 'dump') {
      if (capture.result === null) throw new PeriscopeError('CAPTURE_EMPTY', `the dump has no result yet (status ${capture.status})`);
      const body = JSON.stringify(capture.result, null, 2);
      s.metrics.bytesOut += Buffer.byteLength(body);
      s.store.audit.record(user.username, 'capture.downloaded', capture.sessionId, { captureId: capture.id, format: 'json' });
      return c.body(body, 200, {
        'Content-Type': 'application/json; charset=utf-8',
        'Content-Disposition': `attachment; filename="dump-${capture.pid}-${stamp}.json"`,
      });
    }
    const format = c.req.query('format') ?? DEFAULT_FORMAT;
    if (!isFormat(format)) throw new PeriscopeError('BAD_ARGUMENT', `format must be one of ${FORMAT_NAMES.join(', ')}`);
    const options: ExportOptions = {
      idle: boolParam(c, 'idle', capture.options.idle),
      gil: boolParam(c, 'gil', capture.options.gil),
      function: boolParam(c, 'function', false),
      nolineno: boolParam(c, 'nolineno', false),
      threads: boolParam(c, 'threads', false),
    };
    const chunks = s.captures.storedChunks(capture.id);
    if (chunks === 0) {
      // storedChunks checks the file: the capture may have just been found damaged.
      const now = s.captures.get(capture.id) ?? capture;
      if (now.status === 'damaged') throw new PeriscopeError('CAPTURE_DAMAGED', now.error?.message ?? 'the capture\'s file is damaged and none of it can be read');
      throw new PeriscopeError('CAPTURE_EMPTY', `no samples have arrived for this capture yet (status ${capture.status})`);
    }
    const { body, fileName } = await s.renderer.render(capture.id, chunks, format, options, capture.startedAt);
    s.metrics.bytesOut += Buffer.byteLength(body);
    s.store.audit.record(user.username, 'capture.downloaded', capture.sessionId, { captureId: capture.id, format, options });
    return c.body(body, 200, {
      'Content-Type': FORMATS[format].mime,
      'Content-Disposition': `attachment; filename="${fileName}"`,
    });
  });

  return app;
}
