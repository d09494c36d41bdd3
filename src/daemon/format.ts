// Human-readable tables for `ikev2d ctl` (the JSON form is the same data).
import type { EngineStats, IkeSaSnapshot } from '../ike/engine/api.js';

export interface ChildCounters {
  bytesIn: number;
  bytesOut: number;
  packetsIn: number;
  packetsOut: number;
}

/** list-sas as the daemon answers it: engine snapshots plus kernel counters and relative times. */
export interface ListedIkeSa extends Omit<IkeSaSnapshot, 'children'> {
  rekeyInSeconds: number | null;
  children: (IkeSaSnapshot['children'][number] & { counters?: ChildCounters; rekeyInSeconds: number | null })[];
}

export const spiHex = (n: number) => (n >>> 0).toString(16).padStart(8, '0');

export function humanBytes(n: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let v = n;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return i === 0 ? `${n} B` : `${v.toFixed(1)} ${units[i]}`;
}

export function humanDuration(s: number | null): string {
  if (s === null || !Number.isFinite(s)) return '-';
  if (s <= 0) return 'now';
  const t = Math.round(s);
  const h = Math.floor(t / 3600);
  const m = Math.floor((t % 3600) / 60);
  const sec = t % 60;
  return h ? `${h}h${String(m).padStart(2, '0')}m` : m ? `${m}m${String(sec).padStart(2, '0')}s` : `${sec}s`;
}

function table(rows: string[][]): string {
  const widths: number[] = [];
  for (const r of rows) r.forEach((c, i) => (widths[i] = Math.max(widths[i] ?? 0, c.length)));
  return rows.map((r) => r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]!))).join('  ').trimEnd()).join('\n');
}

export function formatListSas(sas: ListedIkeSa[]): string {
  if (sas.length === 0) return 'no IKE SAs';
  const out: string[] = [];
  const ike: string[][] = [['IKE SA', 'CONNECTION', 'STATE', 'ROLE', 'LOCAL', 'REMOTE', 'SPIi', 'SPIr', 'SUITE', 'REKEY IN']];
  for (const s of sas) {
    ike.push([
      s.ikeSaId, s.connection, s.state, s.initiator ? 'initiator' : 'responder',
      `${s.local.address}[${s.local.port}]`, `${s.remote.address}[${s.remote.port}]`, s.spiI, s.spiR, s.suite, humanDuration(s.rekeyInSeconds),
    ]);
  }
  // Virtual IPs (RFC 7296 §2.19) get a column when some IKE SA has one.
  if (sas.some((s) => s.virtualIps?.length)) {
    ike[0]!.splice(6, 0, 'VIRTUAL IP');
    sas.forEach((s, i) => ike[i + 1]!.splice(6, 0, s.virtualIps?.join(',') || '-'));
  }
  out.push(table(ike));
  const child: string[][] = [['CHILD', 'CONNECTION', 'IKE SA', 'STATE', 'MODE', 'SPI in', 'SPI out', 'SUITE', 'BYTES in/out', 'PKTS in/out', 'REKEY IN', 'TS']];
  for (const s of sas) {
    for (const c of s.children) {
      child.push([
        `${c.name}#${c.childId}`, s.connection, s.ikeSaId, c.state, c.mode, spiHex(c.spiIn), spiHex(c.spiOut), c.suite,
        c.counters ? `${humanBytes(c.counters.bytesIn)}/${humanBytes(c.counters.bytesOut)}` : '-',
        c.counters ? `${c.counters.packetsIn}/${c.counters.packetsOut}` : '-',
        humanDuration(c.rekeyInSeconds),
        `${c.localTs.join(',')} === ${c.remoteTs.join(',')}`,
      ]);
    }
  }
  if (child.length > 1) out.push('', table(child));
  else out.push('', 'no Child SAs');
  return out.join('\n');
}

export function formatStats(s: EngineStats & { uptimeSeconds?: number }): string {
  const rows: string[][] = [
    ['IKE SAs', String(s.ikeSas)],
    ['half-open', String(s.halfOpen)],
    ['Child SAs', String(s.childSas)],
    ['datagrams in', String(s.datagramsIn)],
    ['datagrams out', String(s.datagramsOut)],
    ['dropped', String(s.dropped)],
    ['retransmits', String(s.retransmits)],
    ['IKE rekeys', String(s.rekeys.ike)],
    ['Child rekeys', String(s.rekeys.child)],
    ['optimized rekeys', String(s.rekeys.optimized)],
  ];
  if (s.initiations) rows.push(['initiations waiting', String(s.initiations.waiting)], ['initiations to retry', String(s.initiations.retrying)]);
  if (s.uptimeSeconds !== undefined) rows.unshift(['uptime', humanDuration(s.uptimeSeconds)]);
  return table(rows);
}
