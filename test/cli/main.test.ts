import { execFileSync, spawnSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';

const bin = new URL('../../bin/smke.js', import.meta.url).pathname;

describe('smke entry', () => {
  it('lists the commands with --help', () => {
    const out = execFileSync(process.execPath, [bin, '--help'], { encoding: 'utf8' });
    expect(out).toContain('Usage: smke <command>');
    expect(out).toMatch(/^\s+run\s+Run a pipeline/m);
    expect(out).not.toMatch(/^\s+worker\s/m);
  });

  it('suggests the closest command for a typo and exits 2', () => {
    const r = spawnSync(process.execPath, [bin, 'stauts'], { encoding: 'utf8' });
    expect(r.status).toBe(2);
    expect(r.stderr).toContain("unknown command 'stauts'. Did you mean 'status'?");
  });
});
