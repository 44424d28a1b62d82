// What relays tell each other through the cluster bus (Redis pub/sub), one
// shape per event. Only relays of one cluster read these, so they are not part
// of the agent or browser protocols; each carries the relay it came from.
import type { AgentEndReason, ProcessInfo, RelayToAgent } from '../../shared/protocol.ts';
import type { AgentRecord, CaptureRecord } from '../store/contract.ts';

export type ClusterEvent =
  /** For an agent connected to `relay`. */
  | { type: 'to_agent'; relay: string; agentId: string; message: RelayToAgent }
  /** A capture changed (state, counters, its end). */
  | { type: 'capture_state'; capture: CaptureRecord }
  /** A chunk was stored: viewers elsewhere get it live (the state with its counters follows as capture_state). */
  | { type: 'capture_chunk'; captureId: string; seq: number; payload: Uint8Array }
  | { type: 'dump_result'; capture: CaptureRecord }
  | { type: 'agent_online'; record: AgentRecord }
  | { type: 'agent_offline'; sessionId: string; agentId: string; lastSeen: number; ended: AgentEndReason | null }
  | { type: 'agent_processes'; sessionId: string; agentId: string; processes: ProcessInfo[]; at: number }
  /** The relay is alive; silence for RELAY_TIMEOUT_MS means it is gone (and its agents with it). */
  | { type: 'relay_beat' }
  /** Every relay: say which agents you hold (a relay started, or the bus came back after an outage). */
  | { type: 'relay_sync' }
  /** The agents connected to the sending relay, all of them. */
  | { type: 'relay_agents'; agents: { id: string; sessionId: string }[] }
  /** The session closed: its agents must go, its viewers see it. */
  | { type: 'session_closed'; sessionId: string }
  | { type: 'session_changed'; sessionId: string }
  /** A browser signed out: its sockets on every relay close. */
  | { type: 'login_revoked'; loginId: string };

export type ClusterMessage = ClusterEvent & { from: string };

export type ClusterEventType = ClusterEvent['type'];

/** How often a relay says it is alive. */
export const RELAY_BEAT_MS = 2000;
/** A relay not heard from for this long is gone. */
export const RELAY_TIMEOUT_MS = 3 * RELAY_BEAT_MS + 1000;
