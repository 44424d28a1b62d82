// The one WebSocket to the relay (/ws/ui): binary msgpack frames, validated by
// shared/protocol.ts before anything looks at them. Subscriptions and watches
// are remembered and re-sent after a reconnect (full-jitter backoff).

import { type RelayToUi, type UiToRelay, encode, parseRelayToUi } from '../../shared/protocol.ts';

/** `stopped`: not wanted (signed out, or not signed in yet), which is not a lost connection: nothing to show. */
export type SocketStatus = 'stopped' | 'connecting' | 'open' | 'closed';
type Listener = (message: RelayToUi) => void;

export class UiSocket {
  #ws: WebSocket | null = null;
  #status: SocketStatus = 'stopped';
  #listeners = new Set<Listener>();
  #statusListeners = new Set<(s: SocketStatus, detail: string) => void>();
  #sessions = new Map<string, number>();
  #captures = new Map<string, number>();
  #attempt = 0;
  #timer: ReturnType<typeof setTimeout> | undefined;
  #stableTimer: ReturnType<typeof setTimeout> | undefined;
  #stopped = true;
  /** Every capture watch re-sent after a reconnect starts again at seq 0. */
  #onReconnect = new Set<() => void>();

  get status(): SocketStatus {
    return this.#status;
  }

  start(): void {
    if (!this.#stopped) return;
    this.#stopped = false;
    this.#connect();
  }

  /** Signing out: close and forget everything. */
  stop(): void {
    this.#stopped = true;
    clearTimeout(this.#timer);
    clearTimeout(this.#stableTimer);
    this.#sessions.clear();
    this.#captures.clear();
    const ws = this.#ws;
    this.#ws = null;
    ws?.close(1000, 'signed out');
    this.#setStatus('stopped', '');
  }

  onMessage(fn: Listener): () => void {
    this.#listeners.add(fn);
    return () => this.#listeners.delete(fn);
  }

  /** Called when the relay refuses the socket's sign-in (close 4001). */
  onRefused: (() => void) | undefined;

  onStatus(fn: (s: SocketStatus, detail: string) => void): () => void {
    this.#statusListeners.add(fn);
    return () => this.#statusListeners.delete(fn);
  }

  onReconnect(fn: () => void): () => void {
    this.#onReconnect.add(fn);
    return () => this.#onReconnect.delete(fn);
  }

  subscribeSession(sessionId: string): () => void {
    this.#sessions.set(sessionId, (this.#sessions.get(sessionId) ?? 0) + 1);
    this.send({ type: 'subscribe_session', sessionId });
    return () => {
      const n = (this.#sessions.get(sessionId) ?? 1) - 1;
      if (n <= 0) this.#sessions.delete(sessionId);
      else this.#sessions.set(sessionId, n);
    };
  }

  watchCapture(captureId: string): () => void {
    this.#captures.set(captureId, (this.#captures.get(captureId) ?? 0) + 1);
    this.send({ type: 'watch_capture', captureId });
    return () => {
      const n = (this.#captures.get(captureId) ?? 1) - 1;
      if (n <= 0) {
        this.#captures.delete(captureId);
        this.send({ type: 'unwatch_capture', captureId });
      } else this.#captures.set(captureId, n);
    };
  }

  /** Asks for a capture from seq 0 again (after a reset or a gap). */
  rewatch(captureId: string): void {
    if (!this.#captures.has(captureId)) return;
    this.send({ type: 'unwatch_capture', captureId });
    this.send({ type: 'watch_capture', captureId });
  }

  send(message: UiToRelay): void {
    if (this.#ws && this.#ws.readyState === WebSocket.OPEN) this.#ws.send(encode(message));
  }

  #setStatus(status: SocketStatus, detail: string): void {
    this.#status = status;
    for (const fn of this.#statusListeners) fn(status, detail);
  }

  #connect(): void {
    if (this.#stopped) return;
    const url = `${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}/ws/ui`;
    let ws: WebSocket;
    try {
      ws = new WebSocket(url);
    } catch (err) {
      this.#scheduleReconnect(`cannot open ${url}: ${(err as Error).message}`);
      return;
    }
    ws.binaryType = 'arraybuffer';
    this.#ws = ws;
    this.#setStatus('connecting', '');
    const reconnected = this.#attempt > 0;
    ws.onopen = () => {
      if (this.#ws !== ws) return;
      this.#setStatus('open', '');
      // Only call the connection stable after a while, so a relay that accepts
      // and drops at once does not get hammered.
      this.#stableTimer = setTimeout(() => (this.#attempt = 0), 10_000);
      for (const sessionId of this.#sessions.keys()) this.send({ type: 'subscribe_session', sessionId });
      if (reconnected) for (const fn of this.#onReconnect) fn();
      for (const captureId of this.#captures.keys()) this.send({ type: 'watch_capture', captureId });
    };
    ws.onmessage = (ev) => {
      if (this.#ws !== ws) return;
      if (!(ev.data instanceof ArrayBuffer)) return;
      let message: RelayToUi;
      try {
        message = parseRelayToUi(new Uint8Array(ev.data));
      } catch (err) {
        console.warn('periscope: ignoring a malformed message from the relay:', (err as Error).message);
        return;
      }
      for (const fn of [...this.#listeners]) {
        try {
          fn(message);
        } catch (err) {
          console.error('periscope: a view failed on a relay message', err);
        }
      }
    };
    ws.onclose = (ev) => {
      if (this.#ws !== ws) return;
      this.#ws = null;
      clearTimeout(this.#stableTimer);
      const why = ev.code === 4001 ? 'signed out or not allowed' : ev.reason || `code ${ev.code}`;
      // 4001: the sign-in may be gone (signed out elsewhere, account disabled): let the app check now.
      if (ev.code === 4001) this.onRefused?.();
      this.#scheduleReconnect(why);
    };
  }

  #scheduleReconnect(detail: string): void {
    if (this.#stopped) return;
    this.#setStatus('closed', detail);
    const cap = Math.min(15_000, 500 * 2 ** this.#attempt);
    this.#attempt++;
    this.#timer = setTimeout(() => this.#connect(), 250 + Math.random() * cap);
  }
}

export const socket = new UiSocket();
