// Support sessions, their members, agents and audit log. Everything under a
// session answers 404 to non-members, exactly as for an id that does not exist.
import { Hono } from 'hono';
import type { AppEnv, RelayServices } from '../context.ts';
import { currentAuth, jsonBody, requireUser } from '../guards.ts';
import { captureView } from '../../captures/capture-view.ts';
import { auditView, pageParams } from './auth-routes.ts';

export function sessionRoutes(s: RelayServices): Hono<AppEnv> {
  const app = new Hono<AppEnv>();
  app.use('/api/sessions', requireUser(s));
  app.use('/api/sessions/*', requireUser(s));

  app.post('/api/sessions', async (c) => {
    const { user } = currentAuth(c);
    const body = await jsonBody(c, true);
    return c.json(await s.sessions.create(user, body), 201);
  });

  app.get('/api/sessions', async (c) => {
    const { user } = currentAuth(c);
    const sessions = [];
    for (const session of await s.store.sessions.listForMember(user.id)) {
      const { code: _c, joinToken: _t, commands: _m, publicUrl: _u, ...summary } = await s.sessions.view(session);
      sessions.push(summary);
    }
    return c.json({ sessions });
  });

  app.get('/api/sessions/:id', async (c) => {
    const session = await s.sessions.forMember(c.req.param('id'), currentAuth(c).user);
    return c.json(await s.sessions.view(session));
  });

  app.post('/api/sessions/:id/close', async (c) => {
    const { user } = currentAuth(c);
    const session = await s.sessions.forMember(c.req.param('id'), user);
    await s.sessions.close(session, user.username, 'closed');
    return c.json(await s.sessions.view(await s.sessions.forMember(session.id, user)));
  });

  app.post('/api/sessions/:id/join-token', async (c) => {
    const { user } = currentAuth(c);
    const session = await s.sessions.forMember(c.req.param('id'), user);
    return c.json(await s.sessions.rotateJoinToken(session, user.username));
  });

  app.post('/api/sessions/:id/members', async (c) => {
    const { user } = currentAuth(c);
    const session = await s.sessions.forMember(c.req.param('id'), user);
    const body = await jsonBody(c);
    const added = await s.sessions.addMember(session, user, body.username);
    return c.json({ added, members: (await s.sessions.view(session)).members });
  });

  app.get('/api/sessions/:id/agents', async (c) => {
    const session = await s.sessions.forMember(c.req.param('id'), currentAuth(c).user);
    // What engineers see live: agents that left long ago are pruned (relay/sessions/presence.ts).
    await s.presence.load(session.id);
    return c.json({ agents: s.presence.records(session.id).map((a) => s.agentHub.view(a)) });
  });

  app.get('/api/sessions/:id/captures', async (c) => {
    const session = await s.sessions.forMember(c.req.param('id'), currentAuth(c).user);
    const captures = [];
    for (const r of await s.store.captures.forSession(session.id)) captures.push(captureView((await s.captures.get(r.id)) ?? r));
    return c.json({ captures });
  });

  app.get('/api/sessions/:id/audit', async (c) => {
    const session = await s.sessions.forMember(c.req.param('id'), currentAuth(c).user);
    const { limit, before } = pageParams(c.req.query('limit'), c.req.query('before'));
    return c.json({ entries: (await s.store.audit.forSession(session.id, limit, before)).map(auditView) });
  });

  return app;
}
