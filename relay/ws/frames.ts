// Helpers shared by both hubs for turning ws 'message' payloads into bytes and
// refusing what cannot be a protocol frame.
import type { RawData, WebSocket } from 'ws';
import { CloseCode, encode, type ErrorMessage } from '../../shared/protocol.ts';

export function rawBytes(data: RawData): Buffer {
  if (Buffer.isBuffer(data)) return data;
  if (Array.isArray(data)) return Buffer.concat(data);
  return Buffer.from(data);
}

/** Sends an `error` explaining why, then closes with BadMessage: the peer is not speaking the protocol. */
export function refuseFrame(ws: WebSocket, message: string, send: (ws: WebSocket, bytes: Uint8Array) => void): void {
  if (ws.readyState !== ws.OPEN) return;
  const error: ErrorMessage = { type: 'error', code: 'BAD_MESSAGE', message };
  send(ws, encode(error));
  // Close reasons are limited to 123 bytes.
  ws.close(CloseCode.BadMessage, truncateReason(message));
}

export function truncateReason(reason: string): string {
  let r = reason;
  while (Buffer.byteLength(r) > 123) r = r.slice(0, -2);
  return r;
}

/** Closes sockets with Restarting and waits for them to finish closing, cutting any that take longer than `graceMs`. */
export function closeAll(sockets: WebSocket[], graceMs: number): Promise<void> {
  return Promise.all(
    sockets.map(
      (ws) =>
        new Promise<void>((resolve) => {
          if (ws.readyState === ws.CLOSED) return resolve();
          ws.once('close', () => resolve());
          ws.close(CloseCode.Restarting, 'the relay is restarting; reconnect shortly');
          setTimeout(() => ws.terminate(), graceMs).unref();
        }),
    ),
  ).then(() => undefined);
}
