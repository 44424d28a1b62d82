// Browser connections at /ws/ui: session presence and live captures.
//
// Fan-out never waits for a viewer. Each viewer has a byte-bounded queue in
// front of its socket; a viewer whose queue plus unsent socket buffer passes
// QUEUE_LIMIT_BYTES has its queue dropped and, for every capture it watches,
// gets a capture_reset and the capture again from the store, paced by what its
// socket drains. So relay memory per viewer is bounded, and a slow viewer costs
// the agent and the other viewers nothing.
import type { WebSocket } from 'ws';
import { CloseCode, type DumpThread, ProtocolError, encode, encodeCaptureChunk, parseUiMessage, type RelayToUi, type UiSessionAgents, type UiSessionState, type UiToRelay } from '../../shared/protocol.ts';
import type { Store } from '../store/index.ts';
import type { CaptureRecord } from '../store/captures.ts';
import type { User } from '../store/users.ts';
import type { WebLogin } from '../store/web-logins.ts';
import type { Metrics } from '../metrics.ts';
import { type CaptureListener, type CaptureService, statsOf } from '../captures/capture-service.ts';
import { Heartbeat } from './heartbeat.ts';
import { closeAll, rawBytes, refuseFrame } from './frames.ts';
import type { ErrorCode } from '../../shared/errors.ts';
import { relayLog } from '../log.ts';

export const QUEUE_LIMIT_BYTES = 4 * 1024 * 1024;
/** Above this much unsent data in the socket, new frames wait in the queue instead. */
const SOCKET_HIGH_WATER = 1024 * 1024;
const PUMP_RETRY_MS = 20;
const MAX_SUBSCRIPTIONS = 16;
const MAX_WATCHES = 32;

interface Watch {
  captureId: string;
  /** live: new chunks go through the queue; resync: the pump reads them from the store. */
  mode: 'live' | 'resync';
  /** Next seq this viewer needs. */
  cursor: number;
  needsReset: boolean;
  /** Send capture_state before the first chunk of a (re)sync. */
  needsInitialState: boolean;
  /** The state changed during a resync: send it once the resync is done. */
  stateChanged: boolean;
}

interface Viewer {
  ws: WebSocket;
  user: User;
  login: WebLogin;
  subscriptions: Map<string, { dirty: boolean }>;
  watches: Map<string, Watch>;
  queue: Uint8Array[];
  queueBytes: number;
  pumpTimer: NodeJS.Timeout | undefined;
  /** A pump is running (it awaits the store); another waits for it. */
  pumping: boolean;
  pumpAgain: boolean;
  /** Browser messages are handled one at a time, in order. */
  inbox: Promise<void>;
  heartbeat: Heartbeat;
}

export interface UiHubDeps {
  store: Store;
  captures: CaptureService;
  metrics: Metrics;
  heartbeatMs: number;
  /** The whole presence of a session (a viewer's snapshot); changes after it come through presenceChanged. */
  sessionState: (sessionId: string) => Promise<UiSessionState>;
  /** Re-checks a sign-in (logout or expiry since the socket opened). */
  stillSignedIn: (login: WebLogin) => Promise<boolean>;
}

export class UiHub implements CaptureListener {
  #deps: UiHubDeps;
  #viewers = new Set<Viewer>();

  constructor(deps: UiHubDeps) {
    this.#deps = deps;
    deps.captures.listen(this);
  }

  get viewerCount(): number {
    return this.#viewers.size;
  }

  accept(ws: WebSocket, user: User, login: WebLogin): void {
    const viewer: Viewer = {
      ws,
      user,
      login,
      subscriptions: new Map(),
      watches: new Map(),
      queue: [],
      queueBytes: 0,
      pumpTimer: undefined,
      pumping: false,
      pumpAgain: false,
      inbox: Promise.resolve(),
      heartbeat: new Heartbeat(ws, this.#deps.heartbeatMs),
    };
    this.#viewers.add(viewer);
    ws.on('message', (data, isBinary) => {
      const bytes = rawBytes(data);
      this.#deps.metrics.bytesIn += bytes.length;
      viewer.inbox = viewer.inbox.then(() => this.#onFrame(viewer, bytes, isBinary));
    });
    ws.on('error', () => {});
    ws.on('close', () => {
      this.#viewers.delete(viewer);
      clearTimeout(viewer.pumpTimer);
      viewer.heartbeat.stop();
      viewer.queue = [];
    });
  }

  /** Sign-out: that browser's sockets close too. */
  closeLogin(loginId: string): void {
    for (const v of this.#viewers) if (v.login.id === loginId) v.ws.close(CloseCode.BadAuth, 'signed out');
  }

  /** Closes every viewer; resolves once they are gone (stragglers are cut after `graceMs`). */
  shutdown(graceMs = 2000): Promise<void> {
    return closeAll([...this.#viewers].map((v) => v.ws), graceMs);
  }

  // ---- events from the rest of the relay ------------------------------------

  /** Something beyond presence changed (the session closed): each subscriber gets a fresh snapshot, once its queue has drained. */
  sessionChanged(sessionId: string): void {
    for (const v of this.#viewers) {
      const s = v.subscriptions.get(sessionId);
      if (!s) continue;
      s.dirty = true;
      this.#schedulePump(v, 0);
    }
  }

  /** Coalesced presence changes (relay/sessions/presence.ts): one frame, shared by every subscriber. */
  presenceChanged(update: UiSessionAgents): void {
    let frame: Uint8Array | undefined;
    for (const v of this.#viewers) {
      const s = v.subscriptions.get(update.sessionId);
      // A viewer still owed its snapshot gets the current state with it; changes before it would be redundant.
      if (!s || s.dirty) continue;
      frame ??= encode(update);
      this.#enqueue(v, frame);
    }
  }

  state(capture: CaptureRecord): void {
    let frame: Uint8Array | undefined;
    for (const v of this.#viewers) {
      const w = v.watches.get(capture.id);
      if (!w) continue;
      if (w.mode === 'resync') {
        w.stateChanged = true;
        continue;
      }
      frame ??= encode(captureStateMessage(capture));
      this.#enqueue(v, frame);
    }
  }

  chunk(captureId: string, seq: number, payload: Uint8Array): void {
    let frame: Uint8Array | undefined;
    for (const v of this.#viewers) {
      const w = v.watches.get(captureId);
      if (!w || w.mode !== 'live') continue;
      if (w.cursor !== seq) {
        // Missed something (cannot happen in order, but never send a hole): catch up from the store.
        w.mode = 'resync';
        this.#schedulePump(v, 0);
        continue;
      }
      frame ??= encodeCaptureChunk(captureId, seq, payload);
      w.cursor = seq + 1;
      this.#enqueue(v, frame);
    }
  }

  dumpResult(capture: CaptureRecord): void {
    let frame: Uint8Array | undefined;
    for (const v of this.#viewers) {
      const w = v.watches.get(capture.id);
      if (!w) continue;
      // A resyncing viewer gets the result when it goes live.
      if (w.mode === 'resync') continue;
      frame ??= dumpResultFrame(capture);
      this.#enqueue(v, frame);
    }
  }

  // ---- messages from browsers -------------------------------------------------

  async #onFrame(v: Viewer, bytes: Buffer, isBinary: boolean): Promise<void> {
    if (v.ws.readyState !== v.ws.OPEN) return;
    if (!(await this.#deps.stillSignedIn(v.login))) {
      v.ws.close(CloseCode.BadAuth, 'the sign-in has ended; sign in again');
      return;
    }
    let message: UiToRelay;
    try {
      if (!isBinary) throw new ProtocolError('text frames are not part of the protocol; send binary msgpack frames');
      message = parseUiMessage(bytes);
    } catch (err) {
      const reason = err instanceof ProtocolError ? err.message : `unreadable message: ${(err as Error).message}`;
      return refuseFrame(v.ws, reason, (ws, b) => this.#sendNow(ws, b));
    }
    try {
      await this.#handle(v, message);
    } catch (err) {
      relayLog().error(`internal error handling a browser message`, { err });
      if (v.ws.readyState === v.ws.OPEN) v.ws.close(1011, 'internal error in the relay');
    }
  }

  async #handle(v: Viewer, m: UiToRelay): Promise<void> {
    const { store, captures } = this.#deps;
    switch (m.type) {
      case 'subscribe_session': {
        if (!(await store.sessions.isMember(m.sessionId, v.user.id))) return this.#error(v, 'NOT_FOUND', `no support session ${m.sessionId} is visible to you`);
        if (!v.subscriptions.has(m.sessionId) && v.subscriptions.size >= MAX_SUBSCRIPTIONS) {
          return this.#error(v, 'TOO_MANY_SUBSCRIPTIONS', `a connection can follow at most ${MAX_SUBSCRIPTIONS} sessions; open another connection`);
        }
        v.subscriptions.set(m.sessionId, { dirty: true });
        return this.#schedulePump(v, 0);
      }
      case 'watch_capture': {
        const capture = await captures.get(m.captureId);
        if (!capture || !(await store.sessions.isMember(capture.sessionId, v.user.id))) return this.#error(v, 'NOT_FOUND', `no capture ${m.captureId} is visible to you`);
        if (!v.watches.has(m.captureId) && v.watches.size >= MAX_WATCHES) {
          return this.#error(v, 'TOO_MANY_WATCHES', `a connection can watch at most ${MAX_WATCHES} captures; unwatch one first`);
        }
        v.watches.set(m.captureId, { captureId: m.captureId, mode: 'resync', cursor: 0, needsReset: false, needsInitialState: true, stateChanged: false });
        return this.#schedulePump(v, 0);
      }
      case 'unwatch_capture':
        v.watches.delete(m.captureId);
        return;
    }
  }

  #error(v: Viewer, code: ErrorCode, message: string): void {
    this.#enqueue(v, encode({ type: 'error', code, message }));
  }

  // ---- the per-viewer queue -----------------------------------------------------

  #sendNow(ws: WebSocket, frame: Uint8Array): void {
    if (ws.readyState !== ws.OPEN) return;
    this.#deps.metrics.bytesOut += frame.byteLength;
    ws.send(frame);
  }

  #enqueue(v: Viewer, frame: Uint8Array): void {
    if (v.ws.readyState !== v.ws.OPEN) return;
    if (v.queue.length === 0 && v.ws.bufferedAmount < SOCKET_HIGH_WATER) return this.#sendNow(v.ws, frame);
    v.queue.push(frame);
    v.queueBytes += frame.byteLength;
    if (v.queueBytes + v.ws.bufferedAmount > QUEUE_LIMIT_BYTES) this.#overflow(v);
    this.#schedulePump(v, PUMP_RETRY_MS);
  }

  /** The viewer fell behind: forget its queue and rebuild everything it follows from the store. */
  #overflow(v: Viewer): void {
    this.#deps.metrics.viewerFramesDropped += v.queue.length;
    v.queue = [];
    v.queueBytes = 0;
    for (const w of v.watches.values()) {
      if (w.mode === 'live') {
        w.mode = 'resync';
        w.cursor = 0;
        w.needsReset = true;
        w.needsInitialState = true;
      }
    }
    for (const s of v.subscriptions.values()) s.dirty = true;
  }

  #schedulePump(v: Viewer, delayMs: number): void {
    if (v.pumpTimer !== undefined) {
      if (delayMs > 0) return;
      clearTimeout(v.pumpTimer);
    }
    v.pumpTimer = setTimeout(() => {
      v.pumpTimer = undefined;
      void this.#pumpOnce(v);
    }, delayMs);
  }

  /** One pump at a time per viewer: a resync awaits the store, and two would send chunks twice. */
  async #pumpOnce(v: Viewer): Promise<void> {
    if (v.pumping) {
      v.pumpAgain = true;
      return;
    }
    v.pumping = true;
    try {
      do {
        v.pumpAgain = false;
        await this.#pump(v);
      } while (v.pumpAgain && v.ws.readyState === v.ws.OPEN);
    } catch (err) {
      relayLog().error(`internal error sending to a browser`, { err });
      if (v.ws.readyState === v.ws.OPEN) v.ws.close(1011, 'internal error in the relay');
    } finally {
      v.pumping = false;
    }
  }

  async #pump(v: Viewer): Promise<void> {
    const ws = v.ws;
    if (ws.readyState !== ws.OPEN) return;
    const room = () => ws.bufferedAmount < SOCKET_HIGH_WATER;
    while (v.queue.length > 0 && room()) {
      const frame = v.queue.shift()!;
      v.queueBytes -= frame.byteLength;
      this.#sendNow(ws, frame);
    }
    if (v.queue.length > 0) return this.#schedulePump(v, PUMP_RETRY_MS);

    let more = false;
    for (const [sessionId, s] of v.subscriptions) {
      if (!s.dirty) continue;
      if (!room()) {
        more = true;
        break;
      }
      s.dirty = false;
      this.#sendNow(ws, encode(await this.#deps.sessionState(sessionId)));
    }
    for (const w of [...v.watches.values()]) {
      if (w.mode !== 'resync' || v.watches.get(w.captureId) !== w) continue;
      if (!(await this.#resync(v, w, room))) more = true;
    }
    if (more) this.#schedulePump(v, PUMP_RETRY_MS);
  }

  /** Sends the next stored chunks of a resyncing watch; true when it has caught up and gone live. */
  async #resync(v: Viewer, w: Watch, room: () => boolean): Promise<boolean> {
    const { captures } = this.#deps;
    const capture = await captures.get(w.captureId);
    if (!capture) {
      v.watches.delete(w.captureId);
      return true;
    }
    if (!room()) return false;
    if (w.needsReset) {
      w.needsReset = false;
      this.#sendNow(v.ws, encode({ type: 'capture_reset', captureId: w.captureId }));
    }
    if (w.needsInitialState) {
      w.needsInitialState = false;
      w.stateChanged = false;
      this.#sendNow(v.ws, encode(captureStateMessage(capture)));
    }
    const stored = await captures.storedChunks(w.captureId);
    while (w.cursor < stored && room()) {
      const payload = await captures.readChunk(w.captureId, w.cursor);
      this.#sendNow(v.ws, encodeCaptureChunk(w.captureId, w.cursor, payload));
      w.cursor++;
    }
    if (w.cursor < stored) return false;
    w.mode = 'live';
    // Chunks stored while the store was being read reached nobody (the watch was not live): look once more, now that new ones come live.
    if ((await captures.storedChunks(w.captureId)) > w.cursor && w.mode === 'live') {
      w.mode = 'resync';
      return false;
    }
    const current = (await captures.get(w.captureId)) ?? capture;
    if (w.stateChanged) {
      w.stateChanged = false;
      this.#enqueue(v, encode(captureStateMessage(current)));
    }
    if (current.kind === 'dump' && current.result !== null) {
      this.#enqueue(v, dumpResultFrame(current));
    }
    return true;
  }
}

/**
 * A stored dump for viewers. The store keeps results as parseAgentMessage
 * checked them (and the browser checks them again).
 */
function dumpResultFrame(c: CaptureRecord): Uint8Array {
  return encode({ type: 'dump_result', captureId: c.id, threads: c.result as DumpThread[], ...(c.tasks ? { asyncio: c.tasks } : {}) });
}

function captureStateMessage(c: CaptureRecord): RelayToUi {
  return { type: 'capture_state', captureId: c.id, status: c.status, stats: statsOf(c), chunks: c.chunks, ...(c.error ? { error: c.error } : {}) };
}
