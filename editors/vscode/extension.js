// Starts `smke lsp` (setting smke.command) for .smke files. Everything the
// editor shows comes from that server: this file only connects the two.
const vscode = require('vscode');
const { LanguageClient, TransportKind } = require('vscode-languageclient/node');

let client;

function activate(context) {
  const [command, ...args] = vscode.workspace.getConfiguration('smke').get('command', ['smke', 'lsp']);
  const server = { command, args, transport: TransportKind.stdio };
  client = new LanguageClient('smke', 'smke language server', server, {
    documentSelector: [{ scheme: 'file', language: 'smke' }],
  });
  context.subscriptions.push(client);
  return client.start();
}

function deactivate() {
  return client ? client.stop() : undefined;
}

module.exports = { activate, deactivate };
