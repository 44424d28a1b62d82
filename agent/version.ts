// The agent's version, reported in hello messages and `--version`.
export const AGENT_VERSION = '0.1.0';
