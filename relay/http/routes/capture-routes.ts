// Agents and captures: start, list, inspect, stop, download. Each lookup goes
// through the session the object belongs to; non-members get 404.
import { Hono } from 'hono';
import type { AppEnv, RelayServices } from '../context.ts';
import { notFound } from '../api-error.ts';
import { PeriscopeError } from '../../../shared/errors.ts';
import { currentAuth, jsonBody, requireUser } from '../guards.ts';
import { captureSpecFromRequest } from '../../captures/capture-request.ts';
import { captureView } from '../../captures/capture-view.ts';
import { DEFAULT_FORMAT, FORMATS, FORMAT_NAMES, isFormat } from '../../../shared/export/formats.ts';
import type { ExportOptions } from '../../../shared/export/options.ts';
import { viewOptionsFromQuery } from '../../../shared/profile/view-options.ts';
import type { AgentRecord } from '../../store/agents.ts';
import type { CaptureRecord } from '../../store/captures.ts';
import type { User } from '../../store/users.ts';

export function captureRoutes(s: RelayServices): Hono<AppEnv> {
  /** Chunks stored so far; a capture with none cannot be rendered. */
  const storedChunks = async (capture: CaptureRecord): Promise<number> => {
    const chunks = await s.captures.storedChunks(capture.id);
    if (chunks > 0) return chunks;
    // storedChunks checks the file: the capture may have just been found damaged.
    const now = (await s.captures.get(capture.id)) ?? capture;
    if (now.status === 'damaged') throw new PeriscopeError('CAPTURE_DAMAGED', now.error?.message ?? "the capture's file is damaged and none of it can be read");
    throw new PeriscopeError('CAPTURE_EMPTY', `no samples have arrived for capture ${capture.id} yet (status ${capture.status})`);
  };

  const app = new Hono<AppEnv>();
  app.use('/api/agents/*', requireUser(s));
  app.use('/api/captures/*', requireUser(s));

  const agentFor = async (id: string, user: User): Promise<AgentRecord> => {
    const agent = await s.store.agents.byId(id);
    if (!agent || !(await s.store.sessions.isMember(agent.sessionId, user.id))) throw notFound('agent');
    return agent;
  };
  const captureFor = async (id: string, user: User): Promise<CaptureRecord> => {
    const capture = await s.captures.get(id);
    if (!capture || !(await s.store.sessions.isMember(capture.sessionId, user.id))) throw notFound('capture');
    return capture;
  };

  app.get('/api/agents/:id', async (c) => c.json(s.agentHub.view(await agentFor(c.req.param('id'), currentAuth(c).user))));

  app.post('/api/agents/:id/processes/refresh', async (c) => {
    const { user } = currentAuth(c);
    const agent = await agentFor(c.req.param('id'), user);
    s.sessions.requireOpen(await s.sessions.forMember(agent.sessionId, user));
    if (!s.agents.send(agent.id, { type: 'list_processes' })) throw new PeriscopeError('AGENT_OFFLINE', `agent ${agent.host} is not connected`);
    return c.json({ requested: true }, 202);
  });

  app.post('/api/agents/:id/captures', async (c) => {
    const { user } = currentAuth(c);
    const agent = await agentFor(c.req.param('id'), user);
    s.sessions.requireOpen(await s.sessions.forMember(agent.sessionId, user));
    const spec = captureSpecFromRequest(await jsonBody(c));
    const capture = await s.captures.start(agent, spec, user.username);
    return c.json(captureView(capture), 201);
  });

  app.get('/api/captures/:id', async (c) => {
    const capture = await captureFor(c.req.param('id'), currentAuth(c).user);
    return c.json({ ...captureView(capture), ...(capture.kind === 'dump' ? { result: capture.result, tasks: capture.tasks } : {}) });
  });

  app.post('/api/captures/:id/stop', async (c) => {
    const { user } = currentAuth(c);
    const capture = await captureFor(c.req.param('id'), user);
    return c.json(captureView(await s.captures.stop(capture.id, user.username)));
  });

  app.get('/api/captures/:id/download', async (c) => {
    const { user } = currentAuth(c);
    const capture = await captureFor(c.req.param('id'), user);
    const stamp = new Date(capture.startedAt).toISOString().slice(0, 19).replace(/:/g, '-');
    if (capture.kind === 'dump') {
      if (capture.result === null) throw new PeriscopeError('CAPTURE_EMPTY', `the dump has no result yet (status ${capture.status})`);
      const body = JSON.stringify(capture.result, null, 2);
      s.metrics.bytesOut += Buffer.byteLength(body);
      await s.store.audit.record(user.username, 'capture.downloaded', capture.sessionId, { captureId: capture.id, format: 'json' });
      return c.body(body, 200, {
        'Content-Type': 'application/json; charset=utf-8',
        'Content-Disposition': `attachment; filename="dump-${capture.pid}-${stamp}.json"`,
      });
    }
    const format = c.req.query('format') ?? DEFAULT_FORMAT;
    if (!isFormat(format)) throw new PeriscopeError('BAD_ARGUMENT', `format must be one of ${FORMAT_NAMES.join(', ')}`);
    const options: ExportOptions = viewOptionsFromQuery((name) => c.req.query(name), { idle: capture.options.idle, gil: capture.options.gil });
    const chunks = await storedChunks(capture);
    const { body, fileName } = await s.renderer.render(capture.id, chunks, format, options, capture.startedAt);
    s.metrics.bytesOut += Buffer.byteLength(body);
    await s.store.audit.record(user.username, 'capture.downloaded', capture.sessionId, { captureId: capture.id, format, options });
    // Binary formats (pprof) arrive from the worker as a Uint8Array (structured clone).
    return c.body(typeof body === 'string' ? body : new Uint8Array(body), 200, {
      'Content-Type': FORMATS[format].mime,
      'Content-Disposition': `attachment; filename="${fileName}"`,
    });
  });

  // A differential flame graph of two captures the engineer may see (either session).
  app.get('/api/captures/:id/diff', async (c) => {
    const { user } = currentAuth(c);
    const current = await captureFor(c.req.param('id'), user);
    const baselineId = c.req.query('baseline');
    if (!baselineId) throw new PeriscopeError('BAD_ARGUMENT', 'baseline is required: the id of the capture to compare against');
    const baseline = await captureFor(baselineId, user);
    for (const x of [current, baseline]) {
      if (x.kind === 'dump') throw new PeriscopeError('BAD_ARGUMENT', `capture ${x.id} is a dump; compare top or record captures`);
    }
    const options: ExportOptions = viewOptionsFromQuery((name) => c.req.query(name), { idle: current.options.idle, gil: current.options.gil });
    const label = (x: CaptureRecord) => `${x.kind} of pid ${x.pid} at ${new Date(x.startedAt).toISOString().slice(0, 19).replace('T', ' ')}`;
    const { body, fileName } = await s.renderer.renderDiff(
      { id: current.id, chunks: await storedChunks(current), startedAt: current.startedAt, label: label(current) },
      { id: baseline.id, chunks: await storedChunks(baseline), startedAt: baseline.startedAt, label: label(baseline) },
      options,
    );
    s.metrics.bytesOut += Buffer.byteLength(body);
    await s.store.audit.record(user.username, 'capture.compared', current.sessionId, { captureId: current.id, baselineId: baseline.id, options });
    return c.body(typeof body === 'string' ? body : new Uint8Array(body), 200, {
      'Content-Type': FORMATS.flamegraph.mime,
      'Content-Disposition': `attachment; filename="${fileName}"`,
    });
  });

  return app;
}
