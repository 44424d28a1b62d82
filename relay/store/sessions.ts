import type { DatabaseSync } from 'node:sqlite';
import type { SessionFields } from '../../shared/http-views.ts';
import type { StorageHealth } from './storage-health.ts';
import { sessionValues, toSession, type SessionRow } from './rows.ts';

/** A session as stored: the shared fields (times in epoch ms) and why it closed. */
export interface SupportSession extends SessionFields<number> {
  /** 'closed' (by an engineer) or 'expired'. */
  closeReason: string | null;
}

export interface Member {
  userId: string;
  username: string;
  addedAt: number;
}

export function isOpen(session: SupportSession, now: number): boolean {
  return session.closedAt === null && session.expiresAt > now;
}

export class Sessions {
  #db: DatabaseSync;
  #health: StorageHealth;
  constructor(db: DatabaseSync, health: StorageHealth) {
    this.#db = db;
    this.#health = health;
  }

  insert(session: SupportSession): void {
    this.#health.required('the new support session', () =>
      this.#db
        .prepare('INSERT INTO sessions (id, name, created_by, created_at, expires_at) VALUES (?, ?, ?, ?, ?)')
        .run(...sessionValues(session)),
    );
  }

  byId(id: string): SupportSession | undefined {
    const row = this.#db.prepare('SELECT * FROM sessions WHERE id = ?').get(id) as SessionRow | undefined;
    return row && toSession(row);
  }

  /** The session if `userId` is a member of it; otherwise undefined, exactly as if it did not exist. */
  forMember(id: string, userId: string): SupportSession | undefined {
    const row = this.#db
      .prepare('SELECT s.* FROM sessions s JOIN session_members m ON m.session_id = s.id WHERE s.id = ? AND m.user_id = ?')
      .get(id, userId) as SessionRow | undefined;
    return row && toSession(row);
  }

  listForMember(userId: string): SupportSession[] {
    const rows = this.#db
      .prepare('SELECT s.* FROM sessions s JOIN session_members m ON m.session_id = s.id WHERE m.user_id = ? ORDER BY s.created_at DESC')
      .all(userId) as unknown as SessionRow[];
    return rows.map(toSession);
  }

  /** Open sessions whose time is up (the relay closes them as 'expired'). */
  expired(now: number): SupportSession[] {
    const rows = this.#db.prepare('SELECT * FROM sessions WHERE closed_at IS NULL AND expires_at <= ?').all(now) as unknown as SessionRow[];
    return rows.map(toSession);
  }

  close(id: string, now: number, closedBy: string | null, reason: string): boolean {
    const result = this.#health.required('closing the support session', () =>
      this.#db.prepare('UPDATE sessions SET closed_at = ?, closed_by = ?, close_reason = ? WHERE id = ? AND closed_at IS NULL').run(now, closedBy, reason, id),
    );
    return Number(result.changes) > 0;
  }

  isMember(sessionId: string, userId: string): boolean {
    return this.#db.prepare('SELECT 1 FROM session_members WHERE session_id = ? AND user_id = ?').get(sessionId, userId) !== undefined;
  }

  addMember(sessionId: string, userId: string, addedBy: string | null, now: number): boolean {
    const result = this.#health.required('the new session member', () =>
      this.#db.prepare('INSERT OR IGNORE INTO session_members (session_id, user_id, added_by, added_at) VALUES (?, ?, ?, ?)').run(sessionId, userId, addedBy, now),
    );
    return Number(result.changes) > 0;
  }

  members(sessionId: string): Member[] {
    const rows = this.#db
      .prepare(
        'SELECT m.user_id, u.username, m.added_at FROM session_members m JOIN users u ON u.id = m.user_id WHERE m.session_id = ? ORDER BY m.added_at, u.username',
      )
      .all(sessionId) as unknown as { user_id: string; username: string; added_at: number }[];
    return rows.map((r) => ({ userId: r.user_id, username: r.username, addedAt: r.added_at }));
  }
}
