// What the compiler needs to know about a stage kind. The compiler does not
// import src/stages (dependencies point cli -> runtime -> compiler); the caller
// passes a catalog, and src/stages' registry satisfies this interface.

import type { Resources, Value } from './plan.js';

/** A JSON Schema object as ajv takes it. */
export type JsonSchema = Record<string, unknown>;

/** A named output another stage may reference (`stage.output`). */
export interface OutputSpec {
  /** `dir`: a directory; `file`: one file; `metrics`: a JSON file of numbers. */
  type: 'dir' | 'file' | 'metrics';
  /** Path inside the stage's output directory ('.' for the whole directory). */
  path: string;
  description: string;
}

export interface KindInfo {
  name: string;
  /** Bump when results would change: part of the cache key. */
  version: number;
  /** One line, shown by `smke kinds`. */
  summary: string;
  /** JSON Schema (type object) of the parameters; defaults are filled in by the compiler. */
  params: JsonSchema;
  /** Named outputs for these (resolved, defaulted) params. */
  outputs(params: Record<string, Value>): Record<string, OutputSpec>;
  /** Default resources; the pipeline may override any field. */
  resources?(params: Record<string, Value>): Partial<Resources>;
  /** Files, directories or globs whose content goes into the key (project-relative or absolute). */
  inputs?(params: Record<string, Value>): string[];
  /** Environment variable names whose values go into the key. */
  env?(params: Record<string, Value>): string[];
}

export interface KindCatalog {
  get(name: string): KindInfo | undefined;
  names(): string[];
}
