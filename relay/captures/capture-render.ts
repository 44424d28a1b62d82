// Downloads: render a capture's stored chunks in one of the formats of
// shared/export/formats.ts, in a worker thread, at most MAX_CONCURRENT at a time.
import { Worker } from 'node:worker_threads';
import { join } from 'node:path';
import type { Format } from '../../shared/export/formats.ts';
import type { ExportOptions } from '../../shared/export/options.ts';
import { PeriscopeError } from '../../shared/errors.ts';
import type { RenderJob, RenderResult } from './render-worker.ts';

const MAX_CONCURRENT = 2;
const MAX_WAITING = 16;

export class CaptureRenderer {
  #dir: string;
  #running = 0;
  #waiting: (() => void)[] = [];

  constructor(chunkDir: string) {
    this.#dir = chunkDir;
  }

  async render(captureId: string, chunks: number, format: Format, options: ExportOptions, startedAt: number): Promise<{ body: string; fileName: string }> {
    if (this.#running >= MAX_CONCURRENT) {
      if (this.#waiting.length >= MAX_WAITING) throw new PeriscopeError('BUSY', 'too many downloads are being rendered right now; try again in a minute', { retryAfterSeconds: 30 });
      await new Promise<void>((resolve) => this.#waiting.push(resolve));
    }
    this.#running++;
    try {
      const job: RenderJob = { path: join(this.#dir, `${captureId}.chunks`), chunks, format, options, startedAt };
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
