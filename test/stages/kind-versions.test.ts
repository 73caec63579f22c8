// The plan cache checks kind versions from the table without loading any kind;
// the table must therefore name exactly the registered kinds, with the versions they run as.
import { describe, expect, it } from 'vitest';
import { KIND_VERSIONS } from '../../src/stages/kind-versions.js';
import { registry } from '../../src/stages/registry.js';
import { kindVersions } from '../../src/runtime/load-plan.js';

describe('kind versions', () => {
  it('the table lists every registered kind, and only those, at the version each kind reports', () => {
    const registered = Object.fromEntries(
      registry()
        .all()
        .map((k) => [k.name, k.version]),
    );
    expect(registered).toEqual({ ...KIND_VERSIONS });
    expect(kindVersions()).toEqual(registered);
  });
});
