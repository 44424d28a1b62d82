// Options shared by every aggregation and exporter, named after py-spy's flags so
// that "periscope --function" means what "py-spy record --function" means.

export interface ViewOptions {
  /** Include samples taken while the thread was idle (default false, like py-spy). */
  idle?: boolean;
  /** Only samples where the thread held the GIL (default false). */
  gil?: boolean;
  /** Aggregate by function instead of by line (py-spy --function). */
  function?: boolean;
  /** Drop line numbers from frame labels, which also merges a function's lines (py-spy --nolineno). */
  nolineno?: boolean;
  /** Add a `thread (name) tid` root frame per thread (py-spy --threads). */
  threads?: boolean;
  /** Only samples from these rows of the thread table (default: all threads). */
  threadRows?: readonly number[];
}
