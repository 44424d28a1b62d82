// Renders one download off the main thread: replaying a long capture and laying
// out a flame graph can take seconds, and the relay's event loop must keep
// acknowledging chunks and answering heartbeats meanwhile.
import { parentPort, workerData } from 'node:worker_threads';
import { ChunkLog } from '../store/chunk-files.ts';
import { decodeStoredChunk } from './chunk-codec.ts';
import { profileFromChunks } from '../../shared/profile/chunk.ts';
import { outputFileName, type Format } from '../../shared/export/formats.ts';
import { render } from '../../shared/export/renderers.ts';
import type { ExportOptions } from '../../shared/export/options.ts';
import { isPeriscopeError, type ErrorCode } from '../../shared/errors.ts';

export interface RenderJob {
  path: string;
  /** Only the first `chunks` records: what the relay had stored when the download was asked for. */
  chunks: number;
  format: Format;
  options: ExportOptions;
  startedAt: number;
}

export type RenderResult = { ok: true; body: string; fileName: string } | { ok: false; code: ErrorCode; message: string };

function run(job: RenderJob): RenderResult {
  const log = new ChunkLog(job.path, false);
  try {
    const count = Math.min(job.chunks, log.count);
    const chunks = function* () {
      for (let seq = 0; seq < count; seq++) yield decodeStoredChunk(log.read(seq));
    };
    const profile = profileFromChunks(chunks());
    const body = render(job.format, profile, job.options);
    return { ok: true, body, fileName: outputFileName(profile.capture.commandLine, job.format, new Date(job.startedAt)) };
  } catch (err) {
    if (isPeriscopeError(err)) return { ok: false, code: err.code, message: err.message };
    return { ok: false, code: 'RENDER_FAILED', message: (err as Error).message };
  } finally {
    log.close();
  }
}

parentPort!.postMessage(run(workerData as RenderJob));
