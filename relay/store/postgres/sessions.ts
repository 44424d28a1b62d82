// Support sessions and their members in PostgreSQL: the calls of relay/store/sessions.ts.
// close and addMember are conditional, so with several relays exactly one wins.
import type { Member, SessionsStore, SupportSession } from '../contract.ts';
import type { Db } from './connection.ts';
import { sessionValues, toSession, type SessionRow } from '../rows.ts';

export class PgSessions implements SessionsStore {
  #db: Db;
  constructor(db: Db) {
    this.#db = db;
  }

  async insert(session: SupportSession): Promise<void> {
    await this.#db.run('INSERT INTO sessions (id, name, created_by, created_at, expires_at) VALUES ($1, $2, $3, $4, $5)', sessionValues(session));
  }

  async byId(id: string): Promise<SupportSession | undefined> {
    const row = await this.#db.one<SessionRow>('SELECT * FROM sessions WHERE id = $1', [id]);
    return row && toSession(row);
  }

  async forMember(id: string, userId: string): Promise<SupportSession | undefined> {
    const row = await this.#db.one<SessionRow>('SELECT s.* FROM sessions s JOIN session_members m ON m.session_id = s.id WHERE s.id = $1 AND m.user_id = $2', [id, userId]);
    return row && toSession(row);
  }

  async listForMember(userId: string): Promise<SupportSession[]> {
    const rows = await this.#db.rows<SessionRow>(
      'SELECT s.* FROM sessions s JOIN session_members m ON m.session_id = s.id WHERE m.user_id = $1 ORDER BY s.created_at DESC, s.id',
      [userId],
    );
    return rows.map(toSession);
  }

  async expired(now: number): Promise<SupportSession[]> {
    return (await this.#db.rows<SessionRow>('SELECT * FROM sessions WHERE closed_at IS NULL AND expires_at <= $1 ORDER BY expires_at, id', [now])).map(toSession);
  }

  async close(id: string, now: number, closedBy: string | null, reason: string): Promise<boolean> {
    const changed = await this.#db.run('UPDATE sessions SET closed_at = $1, closed_by = $2, close_reason = $3 WHERE id = $4 AND closed_at IS NULL', [now, closedBy, reason, id]);
    return changed > 0;
  }

  async isMember(sessionId: string, userId: string): Promise<boolean> {
    return (await this.#db.one('SELECT 1 FROM session_members WHERE session_id = $1 AND user_id = $2', [sessionId, userId])) !== undefined;
  }

  async addMember(sessionId: string, userId: string, addedBy: string | null, now: number): Promise<boolean> {
    const added = await this.#db.run('INSERT INTO session_members (session_id, user_id, added_by, added_at) VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING', [
      sessionId,
      userId,
      addedBy,
      now,
    ]);
    return added > 0;
  }

  async members(sessionId: string): Promise<Member[]> {
    const rows = await this.#db.rows<{ user_id: string; username: string; added_at: number }>(
      'SELECT m.user_id, u.username, m.added_at FROM session_members m JOIN users u ON u.id = m.user_id WHERE m.session_id = $1 ORDER BY m.added_at, u.username',
      [sessionId],
    );
    return rows.map((r) => ({ userId: r.user_id, username: r.username, addedAt: r.added_at }));
  }
}
