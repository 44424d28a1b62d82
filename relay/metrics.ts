// Counters and gauges for /metrics (Prometheus text exposition format 0.0.4).
// Gauges are read from their owners at scrape time so they can never drift.

export interface Gauges {
  agentsConnected(): number;
  capturesActive(): number;
  viewers(): number;
}

export class Metrics {
  chunksIn = 0;
  bytesIn = 0;
  bytesOut = 0;
  viewerFramesDropped = 0;
  authFailures = 0;
  #gauges: Gauges | undefined;

  setGauges(gauges: Gauges): void {
    this.#gauges = gauges;
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
    return `${lines.join('\n')}\n`;
  }
}
