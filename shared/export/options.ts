import type { ViewOptions } from '../profile/view-options.ts';

/**
 * Exporters take the same options as views (idle, gil, function, nolineno, threads,
 * threadRows). Speedscope and Chrome trace output already separate processes and
 * threads structurally, so they add no process/thread root frames.
 */
export type ExportOptions = ViewOptions;
