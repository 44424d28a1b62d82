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

  app.get('/api/sessions', (c) => {
    const { user } = currentAuth(c);
    const sessions = s.store.sessions.listForMember(user.id).map((session) => {
      const { code: _c, joinToken: _t, commands: _m, publicUrl: _u, ...summary } = s.sessions.view(session);
      return summary;
    });
    return c.json({ sessions });
  });

  app.get('/api/sessions/:id', (c) => {
    const session = s.sessions.forMember(c.req.param('id'), currentAuth(c).user);
    return c.json(s.sessions.view(session));
  });

  app.post('/api/sessions/:id/close', (c) => {
    const { user } = currentAuth(c);
    const session = s.sessions.forMember(c.req.param('id'), user);
    s.sessions.close(session, user.username, 'closed');
    return c.json(s.sessions.view(s.sessions.forMember(session.id, user)));
  });

  app.post('/api/sessions/:id/join-token', async (c) => {
    const { user } = currentAuth(c);
    const session = s.sessions.forMember(c.req.param('id'), user);
    return c.json(await s.sessions.rotateJoinToken(session, user.username));
  });

  app.post('/api/sessions/:id/members', async (c) => {
    const { user } = currentAuth(c);
    const session = s.sessions.forMember(c.req.param('id'), user);
    const body = await jsonBody(c);
    const added = s.sessions.addMember(session, user, body.username);
    return c.json({ added, members: s.sessions.view(session).members });
  });

  app.get('/api/sessions/:id/agents', (c) => {
    const session = s.sessions.forMember(c.req.param('id'), currentAuth(c).user);
    // What engineers see live: agents that left long ago are pruned (relay/sessions/presence.ts).
    return c.json({ agents: s.presence.records(session.id).map((a) => s.agentHub.view(a)) });
  });

  app.get('/api/sessions/:id/captures', (c) => {
    const session = s.sessions.forMember(c.req.param('id'), currentAuth(c).user);
    const captures = s.store.captures.forSession(session.id).map((r) => captureView(s.captures.get(r.id) ?? r));
    return c.json({ captures });
  });

  app.get('/api/sessions/:id/audit', (c) => {
    const session = s.sessions.forMember(c.req.param('id'), currentAuth(c).user);
    const { limit, before } = pageParams(c.req.query('limit'), c.req.query('before'));
    return c.json({ entries: s.store.audit.forSession(session.id, limit, before).map(auditView) });
  });

  return app;
}
