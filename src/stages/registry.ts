// The registry of stage kinds: the one place the runtime (and the CLI, for
// the compiler) finds a kind by name. Each area lists its kinds in its own
// index.ts; adding a kind never needs a compiler change.

import type { KindCatalog } from '../compiler/kind-catalog.js';
import type { AnyStageKind } from './stage-kind.js';
import { kinds as execKinds } from './exec/index.js';
import { kinds as dataKinds } from './data/index.js';
import { weightsConvertKind } from './data/weights.js';
import { kinds as mlKinds } from './ml/index.js';
import { kinds as evalKinds } from './eval/index.js';
import { kinds as reportKinds } from './report/index.js';

export class Registry implements KindCatalog {
  private readonly byName = new Map<string, AnyStageKind>();

  constructor(kinds: Iterable<AnyStageKind>) {
    for (const kind of kinds) {
      if (this.byName.has(kind.name)) throw new Error(`stage kind '${kind.name}' is registered twice`);
      this.byName.set(kind.name, kind);
    }
  }

  get(name: string): AnyStageKind | undefined {
    return this.byName.get(name);
  }

  names(): string[] {
    return [...this.byName.keys()].sort();
  }

  all(): AnyStageKind[] {
    return this.names().map((n) => this.byName.get(n)!);
  }
}

let defaultRegistry: Registry | undefined;

/** The registry of every kind smke ships. */
export function registry(): Registry {
  defaultRegistry ??= new Registry([...execKinds, ...dataKinds, weightsConvertKind, ...mlKinds, ...evalKinds, ...reportKinds]);
  return defaultRegistry;
}
