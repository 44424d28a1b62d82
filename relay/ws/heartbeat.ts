// Keeps idle connections honest: ping every interval; a peer that has sent
// nothing at all (no pong, no message, no ping) for 3 intervals is closed with
// CloseCode.Timeout and then cut, since a silent peer will not finish a close
// handshake either.
import type { WebSocket } from 'ws';
import { CloseCode } from '../../shared/protocol.ts';

export const SILENCE_INTERVALS = 3;

export class Heartbeat {
  #ws: WebSocket;
  #lastSeen = Date.now();
  #timer: NodeJS.Timeout;

  constructor(ws: WebSocket, intervalMs: number, onTimeout?: () => void) {
    this.#ws = ws;
    const touch = () => this.touch();
    ws.on('pong', touch);
    ws.on('ping', touch);
    ws.on('message', touch);
    this.#timer = setInterval(() => {
      if (ws.readyState !== ws.OPEN) return;
      if (Date.now() - this.#lastSeen > intervalMs * SILENCE_INTERVALS) {
        onTimeout?.();
        ws.close(CloseCode.Timeout, `no message or heartbeat for ${Math.round((intervalMs * SILENCE_INTERVALS) / 1000)} s`);
        setTimeout(() => ws.terminate(), 1000).unref();
        return;
      }
      ws.ping();
    }, intervalMs);
    this.#timer.unref();
    ws.once('close', () => this.stop());
  }

  get lastSeen(): number {
    return this.#lastSeen;
  }

  touch(): void {
    this.#lastSeen = Date.now();
  }

  stop(): void {
    clearInterval(this.#timer);
  }
}
