export * from './options.ts';
export * from './raw.ts';
export * from './speedscope.ts';
export * from './chrometrace.ts';
export * from './flamegraph.ts';
export * from './pprof.ts';
export * from './gecko.ts';
