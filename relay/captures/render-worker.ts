// Renders one download off the main thread: replaying a long capture and laying
// out a flame graph can take seconds, and the relay's event loop must keep
// acknowledging chunks and answering heartbeats meanwhile.
import { parentPort, workerData } from 'node:worker_threads';
import { ChunkLog } from '../store/chunk-files.ts';
import { decodeStoredChunk } from './chunk-codec.ts';
import { profileFromChunks } from '../../shared/profile/chunk.ts';
import { outputFileName, type Format } from '../../shared/export/formats.ts';
import { render, type Rendered } from '../../shared/export/renderers.ts';
import type { ExportOptions } from '../../shared/export/options.ts';
import { isPeriscopeError, type ErrorCode } from '../../shared/errors.ts';
import { exportDiffFlamegraph } from '../../shared/export/diff-flamegraph.ts';
import type { Profile } from '../../shared/profile/model.ts';
import type { RenderSource } from '../store/contract.ts';

export interface StoredCapture {
  /** A chunk file (the embedded store) or the chunks themselves (read from PostgreSQL). */
  source: RenderSource;
  /** Only the first `chunks` records: what the relay had stored when the download was asked for. */
  chunks: number;
  startedAt: number;
}

/** One capture in one format, or (with `baseline`) the comparison of two as a differential flame graph. */
export interface RenderJob extends StoredCapture {
  format: Format;
  options: ExportOptions;
  baseline?: StoredCapture & { label: string };
  /** With `baseline`: how the current capture is named in the title. */
  label?: string;
}

export type RenderResult = { ok: true; body: Rendered; fileName: string } | { ok: false; code: ErrorCode; message: string };

function readProfile(source: StoredCapture): Profile {
  if ('payloads' in source.source) {
    const payloads = source.source.payloads.slice(0, source.chunks);
    return profileFromChunks(payloads.map((p) => decodeStoredChunk(p)));
  }
  const log = new ChunkLog(source.source.path, false);
  try {
    const count = Math.min(source.chunks, log.count);
    const chunks = function* () {
      for (let seq = 0; seq < count; seq++) yield decodeStoredChunk(log.read(seq));
    };
    return profileFromChunks(chunks());
  } finally {
    log.close();
  }
}

function run(job: RenderJob): RenderResult {
  try {
    const profile = readProfile(job);
    if (job.baseline) {
      const body = exportDiffFlamegraph(readProfile(job.baseline), profile, { baseline: job.baseline.label, current: job.label ?? 'current' }, job.options);
      const stamp = new Date(job.startedAt).toISOString().slice(0, 19).replace(/:/g, '-');
      return { ok: true, body, fileName: `diff-${stamp}.svg` };
    }
    const body = render(job.format, profile, job.options);
    return { ok: true, body, fileName: outputFileName(profile.capture.commandLine, job.format, new Date(job.startedAt)) };
  } catch (err) {
    if (isPeriscopeError(err)) return { ok: false, code: err.code, message: err.message };
    return { ok: false, code: 'RENDER_FAILED', message: (err as Error).message };
  }
}

parentPort!.postMessage(run(workerData as RenderJob));
