// Downloads: render a capture's stored chunks in one of the formats of
// shared/export/formats.ts, in a worker thread, at most MAX_CONCURRENT at a time.
import { Worker } from 'node:worker_threads';
import type { Format } from '../../shared/export/formats.ts';
import type { ExportOptions } from '../../shared/export/options.ts';
import { PeriscopeError } from '../../shared/errors.ts';
import type { RenderJob, RenderResult } from './render-worker.ts';
import type { Rendered } from '../../shared/export/renderers.ts';
import type { ChunkStore } from '../store/contract.ts';

const MAX_CONCURRENT = 2;
const MAX_WAITING = 16;

/** A stored capture to compare: its chunks so far and how the title names it. */
export interface CaptureToCompare {
  id: string;
  chunks: number;
  startedAt: number;
  label: string;
}

export class CaptureRenderer {
  #chunks: ChunkStore;
  #running = 0;
  #waiting: (() => void)[] = [];

  constructor(chunks: ChunkStore) {
    this.#chunks = chunks;
  }

  async render(captureId: string, chunks: number, format: Format, options: ExportOptions, startedAt: number): Promise<{ body: Rendered; fileName: string }> {
    return this.#run(async () => ({ source: await this.#chunks.renderSource(captureId, chunks), chunks, format, options, startedAt }));
  }

  /** A differential flame graph: `current`'s boxes coloured by the change since `baseline`. */
  renderDiff(current: CaptureToCompare, baseline: CaptureToCompare, options: ExportOptions): Promise<{ body: Rendered; fileName: string }> {
    return this.#run(async () => ({
      source: await this.#chunks.renderSource(current.id, current.chunks),
      chunks: current.chunks,
      startedAt: current.startedAt,
      label: current.label,
      format: 'flamegraph',
      options,
      baseline: { source: await this.#chunks.renderSource(baseline.id, baseline.chunks), chunks: baseline.chunks, startedAt: baseline.startedAt, label: baseline.label },
    }));
  }

  /** `prepare` runs once a place is free: chunks read from a database are only held while their render runs. */
  async #run(prepare: () => Promise<RenderJob>): Promise<{ body: Rendered; fileName: string }> {
    if (this.#running >= MAX_CONCURRENT) {
      if (this.#waiting.length >= MAX_WAITING) throw new PeriscopeError('BUSY', 'too many downloads are being rendered right now; try again in a minute', { retryAfterSeconds: 30 });
      await new Promise<void>((resolve) => this.#waiting.push(resolve));
    }
    this.#running++;
    try {
      const job = await prepare();
      const result = await new Promise<RenderResult>((resolve, reject) => {
        const worker = new Worker(new URL('./render-worker.ts', import.meta.url), { workerData: job });
        worker.once('message', resolve);
        worker.once('error', reject);
        worker.once('exit', (code) => reject(new Error(`render worker exited with code ${code}`)));
      });
      if (!result.ok) {
        if (result.code === 'EXPORT_TOO_LARGE') throw new PeriscopeError(result.code, `${result.message}; download the raw format or a shorter capture instead`);
        throw new PeriscopeError(result.code, `could not render the capture: ${result.message}`);
      }
      return { body: result.body, fileName: result.fileName };
    } finally {
      this.#running--;
      this.#waiting.shift()?.();
    }
  }
}
