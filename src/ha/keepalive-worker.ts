/**
 * The keep-alive thread (see keepalive.ts): owns the UDP socket, sends the state the main thread
 * last pushed every interval, and reports each peer message and the loss of the peer.
 *
 * The loss is detected by a watchdog timer that every keep-alive re-arms, so it fires exactly
 * `missed` intervals after the last one, not at the next tick (one and a half intervals once the
 * main thread says the peer is suspected: its replication connection closed, as when its process
 * dies; one once the peer's host refused a keep-alive, ICMP port unreachable: nothing listens on
 * its keep-alive port, so its process is gone). Silence is measured on the monotonic clock, less
 * the time this thread itself was stalled (its timers ran late: see `stalled`). When it fires, the
 * check is deferred to the end of the loop's I/O phase (setImmediate): if this thread itself was
 * stalled, datagrams still waiting in the socket are read first, and a peer that was sending is
 * not declared lost.
 *
 * The thread asks for real-time round-robin scheduling (as corosync and keepalived run their
 * heartbeats), else the highest nice priority: it wakes fifty times a second for microseconds, and
 * on a busy machine a sleeping thread can otherwise wait longer for a CPU than the peer waits for
 * its keep-alive. Neither is required; without the privilege it runs as it is.
 */
import dgram from 'node:dgram';
import { writeFileSync } from 'node:fs';
import { isIPv6 } from 'node:net';
import { parentPort, workerData } from 'node:worker_threads';
import { announceAddress } from '../native/announce';
import { raiseThreadPriority } from './thread-priority';
import { encodeKeepAlive, FromWorker, KeepAliveMessage, parseKeepAlive, STAT_FIELDS, ToWorker, WorkerSetup } from './keepalive';

const setup = workerData as WorkerSetup;
const port = parentPort!;
const counters = new Float64Array(setup.stats);
const field = (name: (typeof STAT_FIELDS)[number]): number => STAT_FIELDS.indexOf(name);
const SENT = field('sent');
const RECEIVED = field('received');
const MALFORMED = field('malformed');
const LOST = field('lost');
const HEARD = field('lastHeardAt');
const SEND_GAP = field('maxSendGapMs');
const HEARD_GAP = field('maxHeardGapMs');
const REFUSED = field('refused');
const STALLED = field('stalledMs');

let state: KeepAliveMessage | null = null;
let stateAt = 0;
let last: KeepAliveMessage | null = null;
let reportedLost = false;
let suspected = false;
/**
 * The peer's host refused a keep-alive (ICMP port unreachable) since the last one heard: its
 * process is gone. A refusal that comes less than half an interval after a keep-alive heard is not
 * counted: it may answer one sent before the peer had bound its port.
 */
let refused = false;
let timer: NodeJS.Timeout | null = null;
let watchdog: NodeJS.Timeout | null = null;
/** Monotonic times of the last keep-alive sent and heard (0: none yet). */
let sentMono = 0;
let heardMono = 0;
/** Monotonic time of the last periodic tick, and this thread's own stalls since the last keep-alive heard (ms). */
let tickMono = 0;
let stalledMs = 0;
const silenceMs = setup.missed * setup.intervalMs;

const family = isIPv6(setup.listen.address) ? 'udp6' : 'udp4';
const socket = dgram.createSocket(family);
/**
 * Keep-alives leave from a socket connected to the peer, so that the peer host's ICMP port
 * unreachable (nothing listens on the keep-alive port any more: the process died) comes back as
 * an error on it within one interval, instead of waiting `missed` intervals. Until it is
 * connected, and for a while after any other error on it (an operator's `ss -K` destroys it too),
 * they leave from the listening socket.
 */
let sender: dgram.Socket | null = null;
let senderReady = false;
let closing = false;
const SENDER_RETRY_MS = 1000;

function post(m: FromWorker): void {
  port.postMessage(m);
}

function send(): void {
  if (!state || Date.now() - stateAt > setup.mainTimeoutMs) return;
  if (senderReady && sender) sender.send(encodeKeepAlive(state));
  else socket.send(encodeKeepAlive(state), setup.peer.port, setup.peer.host);
  counters[SENT]++;
  const now = performance.now();
  if (sentMono > 0) counters[SEND_GAP] = Math.max(counters[SEND_GAP], now - sentMono);
  sentMono = now;
}

function receive(msg: Buffer): void {
  const message = parseKeepAlive(msg);
  if (!message) {
    counters[MALFORMED]++;
    return;
  }
  counters[RECEIVED]++;
  counters[HEARD] = Date.now();
  const now = performance.now();
  if (heardMono > 0 && !reportedLost) counters[HEARD_GAP] = Math.max(counters[HEARD_GAP], now - heardMono);
  heardMono = now;
  last = message;
  reportedLost = false;
  suspected = false;
  refused = false;
  stalledMs = 0;
  arm(silenceMs);
  post({ type: 'message', message });
}

function arm(ms: number): void {
  if (watchdog) clearTimeout(watchdog);
  const due = performance.now() + ms;
  watchdog = setTimeout(() => {
    stalled(performance.now() - due);
    setImmediate(check);
  }, ms);
}

/**
 * This thread ran `lateMs` after it was due. Beyond half an interval that is a stall of this
 * thread (a descheduled process, a paused virtual machine), during which it could not have heard
 * anything; it does not count as the peer's silence. On a host that stalls as a whole, the peer's
 * thread stalled too, and no keep-alive waits in the socket to say it is alive.
 */
function stalled(lateMs: number): void {
  if (lateMs <= setup.intervalMs / 2) return;
  stalledMs += lateMs;
  counters[STALLED] += lateMs;
}

/** The periodic keep-alive: also the clock this thread's own stalls are measured by. */
function tick(): void {
  const now = performance.now();
  if (tickMono > 0) stalled(now - tickMono - setup.intervalMs);
  tickMono = now;
  send();
}

/**
 * Silence that makes the peer lost: `missed` intervals; one and a half when it is suspected; one
 * when its host refused a keep-alive since the last one heard.
 */
function limit(): number {
  if (refused) return Math.min(silenceMs, setup.intervalMs);
  return suspected ? Math.min(silenceMs, Math.ceil(1.5 * setup.intervalMs)) : silenceMs;
}

function check(): void {
  if (!last || reportedLost) return;
  // The monotonic clock: a wall clock stepped forward (NTP) must not look like a silent peer.
  const silent = performance.now() - heardMono - stalledMs;
  if (silent < limit()) {
    arm(limit() - silent);
    return;
  }
  reportedLost = true;
  counters[LOST]++;
  const claimedAt = claimSharedAddress();
  post({ type: 'lost', message: last, silentMs: Math.round(silent), suspected: suspected || refused, claimedAt });
}

/**
 * A standby that lost its active peer answers ARP for the shared address and announces it at once,
 * from this thread (see KeepAliveOptions.claim); the main thread does the rest of the takeover.
 * Returns when it was announced (Unix ms), 0 if it was not claimed here.
 */
function claimSharedAddress(): number {
  const claim = setup.claim;
  if (!claim || state?.role !== 'standby' || last?.role !== 'active') return 0;
  try {
    writeFileSync(`/proc/sys/net/ipv4/conf/${claim.device}/arp_ignore`, '0\n');
  } catch {
    return 0;
  }
  try {
    announceAddress(claim.device, claim.address, 3);
  } catch {
    // The link is down: the main thread reports it and announces again.
  }
  return Date.now();
}

port.on('message', (m: ToWorker) => {
  if (m.type === 'close') {
    if (timer) clearInterval(timer);
    if (watchdog) clearTimeout(watchdog);
    closing = true;
    socket.close();
    sender?.close();
    port.close();
    return;
  }
  if (m.type === 'suspect') {
    suspected = true;
    check();
    return;
  }
  state = m.state;
  stateAt = Date.now();
  if (m.now) send();
});

socket.on('message', receive);
let bound = false;
// Send errors (an unreachable peer while a link is down) are expected; only a failed bind is reported.
socket.on('error', (error) => {
  if (!bound) post({ type: 'failed', message: error.message });
});
function openSender(): void {
  if (closing) return;
  const s = dgram.createSocket(family);
  sender = s;
  s.on('error', (error: NodeJS.ErrnoException) => {
    if (error.code === 'ECONNREFUSED') {
      counters[REFUSED]++;
      if (performance.now() - heardMono < setup.intervalMs / 2) return;
      refused = true;
      check();
      return;
    }
    if (sender !== s) return;
    sender = null;
    senderReady = false;
    s.close();
    setTimeout(openSender, SENDER_RETRY_MS).unref();
  });
  s.connect(setup.peer.port, setup.peer.host, () => {
    if (sender === s) senderReady = true;
  });
}

openSender();
socket.bind(setup.listen.port, setup.listen.address, () => {
  bound = true;
  timer = setInterval(tick, setup.intervalMs);
  post({ type: 'ready', scheduling: raiseThreadPriority(10) });
});
