// Best-effort container id, shown to the engineer so they can tell agents
// apart: from /proc/self/cgroup (cgroup v1, and v2 hosts that do not
// namespace cgroups) or /proc/self/mountinfo (Docker's bind mounts of
// /etc/hostname etc. under .../containers/ID/, containerd sandboxes, Podman's
// overlay-containers). '' when nothing looks like one.
import { readFileSync } from 'node:fs';

const HEX64 = '[0-9a-f]{64}';
const CGROUP_PATTERNS = [
  new RegExp(`(?:docker|crio|cri-containerd|libpod|containerd)-(${HEX64})\\.scope`),
  new RegExp(`/(?:docker|kubepods[^\\n]*?|ecs/[^/\\n]+|lxc|containerd|libpod|crio)/(?:[^\\n]*/)?(${HEX64})(?:/|$)`, 'm'),
];
const MOUNTINFO_PATTERNS = [
  new RegExp(`/(?:docker/containers|containers|overlay-containers|sandboxes)/(${HEX64})/`),
];

/** Finds a container id in cgroup and mountinfo text (pure, for tests). */
export function parseContainerId(cgroup: string, mountinfo: string): string {
  for (const re of CGROUP_PATTERNS) {
    const m = re.exec(cgroup);
    if (m?.[1]) return m[1];
  }
  for (const re of MOUNTINFO_PATTERNS) {
    const m = re.exec(mountinfo);
    if (m?.[1]) return m[1];
  }
  return '';
}

function readOr(path: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return '';
  }
}

export function containerId(): string {
  return parseContainerId(readOr('/proc/self/cgroup'), readOr('/proc/self/mountinfo'));
}
