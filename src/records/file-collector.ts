/**
 * A local file collector (`file:///PATH`): each batch is appended as JSON lines and fdatasync'ed.
 * A failed append (a full disk) is cut back so the file only ever holds whole lines. A file has
 * no idempotency: after a crash it may hold a record twice (same `id`); readers de-duplicate.
 */
import fsp, { FileHandle } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { Collector, failure } from './collector';

export class FileCollector implements Collector {
  private readonly file: string;
  private handle: FileHandle | null = null;

  constructor(url: URL) {
    this.file = fileURLToPath(url);
  }

  async send(records: readonly string[]): Promise<void> {
    const handle = await this.open();
    let size = 0;
    try {
      size = (await handle.stat()).size;
      await handle.write(`${records.join('\n')}\n`);
      await handle.datasync();
    } catch (error) {
      await handle.truncate(size).catch(() => undefined);
      throw failure(error, `append to ${this.file}`);
    }
  }

  async check(): Promise<void> {
    await this.open();
  }

  async close(): Promise<void> {
    await this.handle?.close().catch(() => undefined);
    this.handle = null;
  }

  private async open(): Promise<FileHandle> {
    if (this.handle) return this.handle;
    try {
      this.handle = await fsp.open(this.file, 'a');
      return this.handle;
    } catch (error) {
      throw failure(error, `open ${this.file}`);
    }
  }
}
