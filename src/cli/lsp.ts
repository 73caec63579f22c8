// `smke lsp`: the language server for editors (docs/editors.md). It speaks LSP
// on stdin/stdout until the editor closes the connection.
import { Command } from './commander.js';
import { parseArgs } from './args.js';

export default async function lspCommand(argv: string[]): Promise<number> {
  const program = new Command('smke lsp')
    .description('Serve the Language Server Protocol on stdin/stdout (for editors)')
    // Editors' clients pass --stdio; stdio is the only transport, so it is accepted and changes nothing.
    .option('--stdio', 'speak over stdin/stdout (the default and only transport)');
  const early = parseArgs(program, argv);
  if (early !== undefined) return early;
  const [{ startServer }, { registry }] = await Promise.all([import('../lsp/server.js'), import('../stages/registry.js')]);
  const connection = startServer({ catalog: registry() });
  // The process lives as long as the connection: LSP's exit notification, or the editor closing stdin.
  return new Promise<number>((res) => {
    connection.onExit(() => res(0));
    process.stdin.on('end', () => res(0));
  });
}
