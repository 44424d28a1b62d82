// Parent side of bench/relay/swarm.ts: starts a generator process and sends it
// commands; also the light viewer (/ws/ui) the benchmarks watch captures with.
import { spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import { join } from 'node:path';
import type { RelayToUi } from '../../shared/protocol.ts';
import type { ProfileChunk } from '../../shared/profile/chunk.ts';
import { NODE, ROOT, UiPeer, killOnExit, uiSocket, type Client, type RelayProcess } from '../../test/helpers/relay.ts';
import { withNofile } from './lib.ts';

export class Swarm {
  readonly child: ChildProcess;
  readonly pid: number;
  #nextId = 1;
  #waiting = new Map<number, { resolve: (v: any) => void; reject: (e: Error) => void; timer: NodeJS.Timeout }>();
  #stderr = '';
  onProgress: ((p: { ready: number; failed: number; of: number }) => void) | undefined;

  constructor(nofile: number, label: string) {
    const [cmd, ...argv] = withNofile(nofile, [NODE, join(ROOT, 'bench', 'relay', 'swarm.ts')]);
    this.child = spawn(cmd!, argv, { cwd: ROOT, stdio: ['pipe', 'pipe', 'pipe'], env: { ...process.env } });
    killOnExit(this.child);
    this.pid = this.child.pid!;
    this.child.stderr!.on('data', (b: Buffer) => {
      this.#stderr += b.toString();
      if (this.#stderr.length > 20_000) this.#stderr = this.#stderr.slice(-10_000);
    });
    createInterface({ input: this.child.stdout! }).on('line', (line) => {
      let m: any;
      try {
        m = JSON.parse(line);
      } catch {
        return;
      }
      if (m.ev === 'progress') return this.onProgress?.(m);
      const w = this.#waiting.get(m.id);
      if (!w) return;
      this.#waiting.delete(m.id);
      clearTimeout(w.timer);
      w.resolve(m);
    });
    this.child.once('exit', (code, signal) => {
      for (const w of this.#waiting.values()) {
        clearTimeout(w.timer);
        w.reject(new Error(`generator ${label} exited (${code ?? signal}):\n${this.#stderr.slice(-2000)}`));
      }
      this.#waiting.clear();
    });
  }

  request<T = any>(cmd: Record<string, unknown>, timeoutMs: number): Promise<T> {
    const id = this.#nextId++;
    return new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#waiting.delete(id);
        reject(new Error(`generator did not answer ${String(cmd.cmd)} within ${timeoutMs} ms`));
      }, timeoutMs);
      this.#waiting.set(id, { resolve, reject, timer });
      this.child.stdin!.write(`${JSON.stringify({ ...cmd, id })}\n`);
    });
  }

  async exit(): Promise<void> {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return;
    const exited = new Promise<void>((resolve) => this.child.once('exit', () => resolve()));
    try {
      await this.request({ cmd: 'exit' }, 5000);
    } catch {
      // killed below
    }
    const t = setTimeout(() => this.child.kill('SIGKILL'), 5000);
    await exited;
    clearTimeout(t);
  }
}

export interface ViewedChunk {
  seq: number;
  /** Wall-clock ms when the frame arrived. */
  wallAt: number;
  /** performance.now() when it arrived. */
  at: number;
  chunk: ProfileChunk;
  bytes: number;
}

/**
 * A browser on /ws/ui (the sign-in cookie and the relay's Origin) watching
 * captures: the harness's UiPeer, keeping nothing but counts and handing each
 * chunk with its arrival time (taken before parsing) to onChunk.
 */
export class Viewer extends UiPeer {
  onChunk: ((c: ViewedChunk) => void) | undefined;
  messages: Record<string, number> = {};
  resets = 0;
  /** Socket errors and the relay's error messages (parse errors are in parseErrors). */
  errors: string[] = [];

  constructor(relay: Pick<RelayProcess, 'wsUrl' | 'origin'>, client: Client) {
    super(uiSocket(relay.wsUrl, client.cookie ?? '', relay.origin, { perMessageDeflate: false }));
    this.ws.on('error', (e) => this.errors.push(e.message));
  }

  protected override onMessage(m: RelayToUi, data: Buffer, at: number): void {
    this.messages[m.type] = (this.messages[m.type] ?? 0) + 1;
    if (m.type === 'capture_reset') this.resets++;
    if (m.type === 'error') this.errors.push(`${m.code}: ${m.message}`);
    if (m.type === 'capture_chunk') this.onChunk?.({ seq: m.seq, wallAt: performance.timeOrigin + at, at, chunk: m.chunk as ProfileChunk, bytes: data.byteLength });
  }

  watch(captureId: string): void {
    this.send({ type: 'watch_capture', captureId });
  }

  override close(): void {
    this.terminate();
  }
}

/** Per-sample age (viewer receive − sample wall time) and the chunk's own age, for every sample in a chunk. */
export function chunkAges(c: ViewedChunk): { sampleAgesMs: number[]; cutAgeMs: number } {
  const start = c.chunk.capture.startTimeUs;
  const times = c.chunk.samples.timeUs;
  const ages: number[] = new Array(times.length);
  for (let i = 0; i < times.length; i++) ages[i] = c.wallAt - (start + times[i]!) / 1000;
  // durationUs is set when the agent drained its sampler, right before the cut.
  return { sampleAgesMs: ages, cutAgeMs: c.wallAt - (start + c.chunk.capture.durationUs) / 1000 };
}
