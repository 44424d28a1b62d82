// Counters and gauges for /metrics (Prometheus text exposition format 0.0.4).
// Gauges are read from their owners at scrape time so they can never drift.

export interface Gauges {
  agentsConnected(): number;
  capturesActive(): number;
  viewers(): number;
}

/** What /metrics reports about this relay's place in a cluster. */
export interface ClusterCounters {
  relayId: string;
  store: string;
  bus: string;
  /** Relays heard from recently, this one included. */
  relays(): number;
  /** Messages for agents sent on to the relay holding them. */
  routed(): number;
  published(): number;
  received(): number;
  dropped(): number;
  forged(): number;
}

/** What /metrics reports about the data dir (StorageHealth). */
export interface StorageCounters {
  readonly degraded: boolean;
  readonly heldWrites: number;
  readonly diskFullErrors: number;
  readonly writesDropped: number;
}

export class Metrics {
  chunksIn = 0;
  bytesIn = 0;
  bytesOut = 0;
  viewerFramesDropped = 0;
  authFailures = 0;
  /** Finished captures whose chunk file was found damaged (since the relay started). */
  capturesDamaged = 0;
  #gauges: Gauges | undefined;
  #storage: StorageCounters | undefined;
  #cluster: ClusterCounters | undefined;

  setCluster(cluster: ClusterCounters): void {
    this.#cluster = cluster;
  }

  setGauges(gauges: Gauges): void {
    this.#gauges = gauges;
  }

  setStorage(storage: StorageCounters): void {
    this.#storage = storage;
  }

  render(): string {
    const g = this.#gauges;
    const lines: string[] = [];
    const metric = (name: string, type: 'gauge' | 'counter', help: string, value: number) => {
      lines.push(`# HELP ${name} ${help}`, `# TYPE ${name} ${type}`, `${name} ${value}`);
    };
    metric('periscope_agents_connected', 'gauge', 'Agents with a live WebSocket connection.', g?.agentsConnected() ?? 0);
    metric('periscope_captures_active', 'gauge', 'Captures starting or running.', g?.capturesActive() ?? 0);
    metric('periscope_chunks_in_total', 'counter', 'Profile chunks received from agents and stored.', this.chunksIn);
    metric('periscope_bytes_in_total', 'counter', 'WebSocket payload bytes received from agents and browsers.', this.bytesIn);
    metric('periscope_bytes_out_total', 'counter', 'WebSocket payload bytes sent plus download body bytes.', this.bytesOut);
    metric('periscope_viewers', 'gauge', 'Browser WebSocket connections (/ws/ui).', g?.viewers() ?? 0);
    metric('periscope_viewer_frames_dropped_total', 'counter', 'Frames dropped from slow viewers\' queues (each such viewer is resynced from the store).', this.viewerFramesDropped);
    metric('periscope_auth_failures_total', 'counter', 'Refused sign-ins and refused WebSocket upgrades.', this.authFailures);
    const st = this.#storage;
    metric('periscope_storage_degraded', 'gauge', '1 while the data dir is full (see /healthz), else 0.', st?.degraded ? 1 : 0);
    metric('periscope_disk_full_errors_total', 'counter', 'Writes (chunk appends and database writes) that found the data dir full.', st?.diskFullErrors ?? 0);
    metric('periscope_held_writes', 'gauge', 'Database writes held in memory until the data dir has room.', st?.heldWrites ?? 0);
    metric('periscope_held_writes_dropped_total', 'counter', 'Held writes dropped because too many were waiting for room.', st?.writesDropped ?? 0);
    metric('periscope_captures_damaged_total', 'counter', 'Finished captures found with a damaged chunk file.', this.capturesDamaged);
    const cl = this.#cluster;
    if (cl) {
      // Label values are the relay's own id and fixed engine names: nothing a client sent.
      lines.push('# HELP periscope_relay_info This relay: its id and the engines behind it.', '# TYPE periscope_relay_info gauge', `periscope_relay_info{relay="${cl.relayId}",store="${cl.store}",bus="${cl.bus}"} 1`);
      metric('periscope_cluster_relays', 'gauge', 'Relays this one hears from on the cluster bus, itself included.', cl.relays());
      metric('periscope_agent_messages_routed_total', 'counter', 'Requests for agents connected to another relay, sent on through the cluster bus.', cl.routed());
      metric('periscope_cluster_events_published_total', 'counter', 'Events this relay published to the other relays.', cl.published());
      metric('periscope_cluster_events_received_total', 'counter', 'Events received from the other relays.', cl.received());
      metric('periscope_cluster_events_dropped_total', 'counter', 'Events not sent because the cluster bus was unreachable.', cl.dropped());
      metric('periscope_cluster_events_forged_total', 'counter', 'Messages on the cluster channel without a valid signature, ignored.', cl.forged());
    }
    return `${lines.join('\n')}\n`;
  }
}
