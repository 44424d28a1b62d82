// Builds what `npm start` serves and `npm test` exercises: the native reader,
// the web client bundle and the single-binary agent the relay hands to
// customers. Run by `npm install` (postinstall) and again, cheaply, before
// `npm start`: each step skips work that is already up to date.
import { ensureNativeBuilt } from './build-native.ts';
import { buildWeb } from './build-web.ts';
import { ensureAgentBinary } from './build-agent/index.ts';

const log = (line: string) => console.log(`prepare: ${line}`);
ensureNativeBuilt();
log('native reader ready');
await buildWeb();
log('web client built');
await ensureAgentBinary(log);
log('agent binary ready');
