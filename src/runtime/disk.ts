// The few file-system operations publishing needs, behind an interface (the
// idea of Ninja's DiskInterface) so tests can make a write fail with ENOSPC
// at any step. Everything else uses node:fs directly.

import * as fs from 'node:fs';

export interface Disk {
  writeFile(path: string, data: string | Uint8Array): void;
  copyFile(from: string, to: string): void;
  /** fsync a file or a directory. */
  fsync(path: string): void;
  rename(from: string, to: string): void;
}

export const realDisk: Disk = {
  writeFile: (p, d) => fs.writeFileSync(p, d),
  copyFile: (a, b) => fs.copyFileSync(a, b),
  fsync(path) {
    const fd = fs.openSync(path, 'r');
    try {
      fs.fsyncSync(fd);
    } finally {
      fs.closeSync(fd);
    }
  },
  rename: (a, b) => fs.renameSync(a, b),
};
