/**
 * One schema for every setting: each option is a command-line flag (named like rtpengine's where
 * the meaning is the same) and a key of the config file, with one default. The defaults work on
 * a fresh machine with no flags at all.
 */

export type OptionType = 'string' | 'integer' | 'boolean' | 'list';

export interface OptionSpec {
  type: OptionType;
  default: string | number | boolean | string[];
  description: string;
  /** For integers: inclusive bounds. */
  min?: number;
  max?: number;
  /** For strings: allowed values. */
  choices?: readonly string[];
}

export const optionSpecs = {
  'config-file': { type: 'string', default: '', description: 'Config file (INI: [rtphub] or [rtpengine] section, key = value, same keys as the flags)' },
  'config-section': { type: 'string', default: 'rtphub', description: 'Section of the config file to read' },
  interface: {
    type: 'list',
    default: ['127.0.0.1'],
    description: 'Local media address, [NAME/]IP[!ADVERTISED-IP]; repeatable (first one is the default)',
  },
  'port-min': { type: 'integer', default: 30000, min: 1, max: 65535, description: 'Lowest media port' },
  'port-max': { type: 'integer', default: 40000, min: 1, max: 65535, description: 'Highest media port' },
  'num-threads': { type: 'integer', default: 0, min: 0, max: 64, description: 'Forwarding worker threads (0: one per CPU)' },
  backend: {
    type: 'string',
    default: 'auto',
    choices: ['auto', 'io_uring', 'epoll', 'af_xdp'],
    description: 'Packet loop: io_uring (fast path), epoll (portable), af_xdp (kernel bypass, needs --xdp-dev) or auto (io_uring, else epoll)',
  },
  'xdp-dev': {
    type: 'list',
    default: [],
    description: 'af_xdp: network device to take media from (its XDP program passes everything else to the kernel); repeatable',
  },
  'xdp-frames': { type: 'integer', default: 2048, min: 64, max: 1048576, description: 'af_xdp: UMEM frames of 2 KiB (locked memory: mind ulimit -l)' },
  'xdp-ring-size': { type: 'integer', default: 1024, min: 64, max: 16384, description: 'af_xdp: entries of each rx/tx/fill/completion ring (power of two)' },
  'xdp-udp-checksum': { type: 'boolean', default: true, description: 'af_xdp: compute the UDP checksum of forwarded packets (false: send 0, IPv4)' },
  'coalesce-us': {
    type: 'integer',
    default: 500,
    min: 0,
    max: 5000,
    description: 'Coalescing window in microseconds: how long a worker gathers packets after a wake-up (0: off)',
  },
  'endpoint-learning': {
    type: 'string',
    default: 'delayed',
    choices: ['off', 'immediate', 'delayed', 'heuristic'],
    description: 'Default endpoint learning mode (as rtpengine)',
  },
  'learning-window-ms': { type: 'integer', default: 3000, min: 0, max: 60000, description: 'Delayed/heuristic learning window' },
  'listen-ng': { type: 'string', default: '127.0.0.1:22222', description: 'ng control socket (UDP), [IP:]PORT; empty: off' },
  'listen-tcp-ng': { type: 'string', default: '', description: 'ng control socket over TCP, [IP:]PORT; empty: off' },
  'listen-http': { type: 'string', default: '', description: 'HTTP listener for Prometheus /metrics, [IP:]PORT; empty: off' },
  timeout: { type: 'integer', default: 60, min: 1, max: 86400, description: 'Seconds without media before a call ends' },
  'silent-timeout': { type: 'integer', default: 3600, min: 1, max: 86400, description: 'Same, while every stream is on hold' },
  'offer-timeout': { type: 'integer', default: 3600, min: 1, max: 86400, description: 'Seconds an unanswered offer is kept' },
  'final-timeout': { type: 'integer', default: 0, min: 0, max: 864000, description: 'Longest call in seconds (0: no limit)' },
  'delete-delay': { type: 'integer', default: 30, min: 0, max: 3600, description: 'Seconds between delete and the end of the call' },
  'max-sessions': { type: 'integer', default: -1, min: -1, max: 10000000, description: 'Most calls at once (-1: no limit)' },
  'ha-peer': { type: 'string', default: '', description: 'Peer relay for hot standby, HOST:PORT (replication over TCP, keep-alives over UDP); empty: no HA' },
  'ha-listen': { type: 'string', default: '0.0.0.0:2223', description: 'Where this relay takes replication and keep-alives from its peer, IP:PORT' },
  'ha-node-id': { type: 'string', default: '', description: 'This relay\'s name in the pair (default: the host name)' },
  'ha-priority': { type: 'integer', default: 100, min: 0, max: 65535, description: 'Split brain: the higher priority stays active' },
  'ha-keepalive-interval': { type: 'integer', default: 20, min: 5, max: 10000, description: 'Milliseconds between keep-alives' },
  'ha-missed': { type: 'integer', default: 3, min: 1, max: 100, description: 'Missed keep-alives before the standby takes over' },
  'ha-vip': { type: 'string', default: '', description: 'Shared address IP/PREFIX the active relay holds (media sockets bind it with IP_FREEBIND)' },
  'ha-vip-dev': { type: 'string', default: '', description: 'Interface the shared address goes on' },
  'ha-vip-method': {
    type: 'string',
    default: 'held',
    choices: ['held', 'added'],
    description: 'held: the address stays on lo on both relays and only the active answers ARP for it (arp_ignore); added: added to the interface at takeover (IPv6 always)',
  },
  'ha-mode': { type: 'string', default: 'hot', choices: ['hot', 'cold'], description: 'hot: take calls over; cold: take over empty, dropping them' },
  'ha-role': {
    type: 'string',
    default: 'auto',
    choices: ['auto', 'active', 'standby'],
    description: 'Initial role; auto listens for an active peer first (a returning relay does not preempt)',
  },
  redis: { type: 'string', default: '', description: 'Keep restoration records in Redis, redis://HOST:PORT/DB; any relay of the group adopts a failed relay\'s calls' },
  'redis-expires': { type: 'integer', default: 86400, min: 1, max: 31536000, description: 'Expiry of a call record in Redis (s)' },
  'redis-lease-ms': { type: 'integer', default: 3000, min: 100, max: 600000, description: 'A relay whose lease is not renewed for this long is adopted' },
  'listen-sip': { type: 'string', default: '', description: 'SIP front (record-routing proxy that anchors the media), IP:PORT, UDP and TCP; empty: off' },
  'sip-advertised': { type: 'string', default: '', description: 'Host the SIP front writes into Via and Record-Route (default: the --listen-sip address)' },
  proxy: {
    type: 'list',
    default: [],
    description: 'Next-hop proxy of the SIP front, sip:HOST:PORT[;priority=N][;transport=tcp]; repeatable (priority 1 is the first level)',
  },
  'proxy-timeout': { type: 'integer', default: 500, min: 10, max: 60000, description: 'Milliseconds a proxy has to answer before the next one is tried' },
  'proxy-probe-interval': { type: 'integer', default: 5000, min: 0, max: 3600000, description: 'Milliseconds between OPTIONS health probes of each proxy (0: none)' },
  'proxy-probe-answers': { type: 'integer', default: 3, min: 1, max: 100, description: 'Probes a failed proxy must answer in a row to be used again' },
  'alternate-path': { type: 'list', default: [], description: 'Backup SIP front HOST:PORT written into alternatePath of our Via and Record-Route; repeatable' },
  'cdr-target': {
    type: 'list',
    default: [],
    description:
      'Home collector of call records, repeatable: http(s)://… (POST of JSON batches), redis://HOST:PORT/DB?stream=NAME (XADD, de-duplicated), file:///PATH (JSON lines)',
  },
  'cdr-batch': { type: 'integer', default: 500, min: 1, max: 10000, description: 'Most call records per request to a collector' },
  'cdr-timeout-ms': { type: 'integer', default: 5000, min: 50, max: 600000, description: 'A collector that has not answered a request in this time is down (a hang)' },
  'cdr-retry-ms': { type: 'integer', default: 1000, min: 50, max: 600000, description: 'Health check interval of a collector that is down' },
  'spool-dir': {
    type: 'string',
    default: '',
    description: 'Durable spool of the call records a collector has not taken (a subdirectory per target); empty: memory only, a crash loses them',
  },
  'spool-max-bytes': {
    type: 'integer',
    default: 1073741824,
    min: 4096,
    max: 1099511627776,
    description: 'Spool size bound per target; at the bound new records wait in memory (--spool-memory-records), never replacing spooled ones',
  },
  'spool-memory-records': {
    type: 'integer',
    default: 100000,
    min: 1,
    max: 10000000,
    description: 'Call records per target held in memory, undelivered and not yet spooled; beyond it the newest are dropped (counted)',
  },
  'spool-fsync-ms': { type: 'integer', default: 50, min: 1, max: 10000, description: 'Spool appends are fsynced in batches at this interval; a record is acknowledged once fsynced' },
  'spool-after-ms': {
    type: 'integer',
    default: 1000,
    min: 0,
    max: 600000,
    description: 'A record its collector has not taken within this time is spooled (0: at the next fsync batch); all are while the collector is down',
  },
  'log-level': { type: 'integer', default: 6, min: 0, max: 7, description: 'Syslog-style level: 3 error, 4 warning, 6 info, 7 debug' },
  pidfile: { type: 'string', default: '', description: 'Write the process id to this file' },
  foreground: { type: 'boolean', default: true, description: 'Accepted for rtpengine compatibility; rtphub always runs in the foreground' },
} as const satisfies Record<string, OptionSpec>;

export type OptionName = keyof typeof optionSpecs;

type ValueOf<S extends OptionSpec> = S['type'] extends 'integer'
  ? number
  : S['type'] extends 'boolean'
    ? boolean
    : S['type'] extends 'list'
      ? string[]
      : string;

export type Config = { [K in OptionName]: ValueOf<(typeof optionSpecs)[K]> };

export function defaults(): Config {
  const out: Record<string, unknown> = {};
  for (const [name, spec] of Object.entries(optionSpecs)) {
    out[name] = Array.isArray(spec.default) ? [...spec.default] : spec.default;
  }
  return out as Config;
}
