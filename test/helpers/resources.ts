/**
 * What a process holds: open descriptors (from /proc/self/fd), threads and resident memory, for
 * the tests that prove streams and relays give everything back. Descriptors are counted by kind
 * because module loading opens and closes files at any time; a relay holds only sockets and
 * anonymous inodes (eventfd, epoll, io_uring).
 */
import fs from 'node:fs';

function targets(): string[] {
  const out: string[] = [];
  for (const fd of fs.readdirSync('/proc/self/fd')) {
    try {
      out.push(fs.readlinkSync(`/proc/self/fd/${fd}`));
    } catch {
      // the descriptor that listed the directory is already closed
    }
  }
  return out;
}

/** Sockets and anonymous inodes (eventfd, eventpoll, io_uring): what a relay opens. */
export function openDescriptors(): number {
  return targets().filter((target) => target.startsWith('socket:') || target.startsWith('anon_inode:')).length;
}

/** Every open descriptor, for logging. */
export function describeDescriptors(): Record<string, number> {
  const kinds: Record<string, number> = {};
  for (const target of targets()) {
    const kind = target.startsWith('/') ? 'file' : target.split(':')[0];
    kinds[kind] = (kinds[kind] ?? 0) + 1;
  }
  return kinds;
}

/** Threads of this process (the relay's workers included). */
export function threadCount(): number {
  return fs.readdirSync('/proc/self/task').length;
}

export function residentBytes(): number {
  return process.memoryUsage().rss;
}
