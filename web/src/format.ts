// Formatting helpers shared by the views.

export function percent(part: number, whole: number, digits = 1): string {
  if (!(whole > 0)) return '0%';
  return `${((100 * part) / whole).toFixed(digits)}%`;
}

/** Seconds with a unit that fits: 0.42s, 12.3s, 4m05s, 2h03m. */
export function seconds(s: number): string {
  if (!Number.isFinite(s) || s < 0) return '–';
  if (s < 10) return `${s.toFixed(2)}s`;
  if (s < 60) return `${s.toFixed(1)}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${String(Math.floor(s % 60)).padStart(2, '0')}s`;
  return `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, '0')}m`;
}

export function count(n: number): string {
  return n.toLocaleString('en-US');
}

/** A timestamp from the relay: ISO string, or ms (or s) since the epoch. */
export function toDate(v: unknown): Date | null {
  if (v === null || v === undefined || v === '') return null;
  if (typeof v === 'number') return new Date(v < 1e11 ? v * 1000 : v);
  if (typeof v === 'string') {
    const n = Number(v);
    const d = Number.isFinite(n) && /^\d+(\.\d+)?$/.test(v) ? new Date(n < 1e11 ? n * 1000 : n) : new Date(v);
    return Number.isNaN(d.getTime()) ? null : d;
  }
  return null;
}

/** The time of day, with the date in front unless it is today (local time): `14:03:05`, `2026-01-02 14:03:05`. */
export function dateTime(v: unknown, now: Date = new Date()): string {
  const d = toDate(v);
  if (!d) return '–';
  const today = now;
  const sameDay = d.toDateString() === today.toDateString();
  const time = d.toLocaleTimeString('en-GB', { hour12: false });
  return sameDay ? time : `${d.toLocaleDateString('en-CA')} ${time}`;
}

/** "in 14 min" / "3 min ago". */
export function relative(v: unknown, now = Date.now()): string {
  const d = toDate(v);
  if (!d) return '';
  const diff = d.getTime() - now;
  const abs = Math.abs(diff);
  const unit = abs < 90_000 ? `${Math.round(abs / 1000)} s` : abs < 5_400_000 ? `${Math.round(abs / 60_000)} min` : `${(abs / 3_600_000).toFixed(1)} h`;
  return diff >= 0 ? `in ${unit}` : `${unit} ago`;
}

export function shortId(id: string, n = 12): string {
  return id.length > n ? id.slice(0, n) : id;
}
