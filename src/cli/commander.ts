// commander, for every command's argument parsing, loaded with require. It is
// CommonJS; imported as an ES module, Node first scans its source for export
// names (cjs-module-lexer) on every start, a few milliseconds of each command,
// which a no-op `smke run` cannot spare (docs/runtime.md, "Start-up and the
// no-op fast path").
import { createRequire } from 'node:module';

const commander = createRequire(import.meta.url)('commander') as typeof import('commander');

export const Command = commander.Command;
export type Command = import('commander').Command;
export const Option = commander.Option;
export type Option = import('commander').Option;
export const CommanderError = commander.CommanderError;
export type CommanderError = import('commander').CommanderError;
