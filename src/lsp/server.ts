// `smke lsp`: a Language Server Protocol server over stdio. Diagnostics are the
// compiler's own (the same codes and messages as `smke check`); hover,
// go-to-definition and completion come from ./analysis.ts. The server keeps no
// state beyond the open buffers: every answer re-parses the buffer, which
// takes milliseconds for a pipeline of normal size.

import { fileURLToPath, pathToFileURL } from 'node:url';
import {
  CompletionItemKind,
  DiagnosticSeverity,
  MarkupKind,
  TextDocumentSyncKind,
  TextDocuments,
  createConnection,
  type Connection,
  type Diagnostic as LspDiagnostic,
} from 'vscode-languageserver/node.js';
import { TextDocument } from 'vscode-languageserver-textdocument';
import { compile, type Diagnostic, type KindCatalog, type SourceSpan } from '../compiler/index.js';
import { parse } from '../compiler/parser.js';
import { SourceFile } from '../compiler/source.js';
import { completionsAt, definitionAt, hoverAt, type Completion } from './analysis.js';

const COMPLETION_KIND: Record<Completion['kind'], CompletionItemKind> = {
  kind: CompletionItemKind.Class,
  param: CompletionItemKind.Property,
  setting: CompletionItemKind.Keyword,
  output: CompletionItemKind.Field,
  variable: CompletionItemKind.Variable,
  stage: CompletionItemKind.Module,
  function: CompletionItemKind.Function,
};

/** A compiler span as an LSP range (lines and columns 0-based; columns are UTF-16 units on both sides). */
function range(span: SourceSpan): LspDiagnostic['range'] {
  const start = { line: span.line - 1, character: span.column - 1 };
  return { start, end: { line: start.line, character: start.character + Math.max(span.length, 1) } };
}

function toLsp(d: Diagnostic, span: SourceSpan): LspDiagnostic {
  const extra = [d.label, d.help && `help: ${d.help}`, ...(d.notes ?? []).map((n) => `note: ${n}`)].filter(Boolean);
  return {
    range: range(span),
    severity: d.severity === 'error' ? DiagnosticSeverity.Error : DiagnosticSeverity.Warning,
    code: d.code,
    source: 'smke',
    message: [d.message, ...extra].join('\n'),
    relatedInformation: (d.labels ?? []).map((l) => ({ location: { uri: pathToFileURL(l.span.file).href, range: range(l.span) }, message: l.message })),
  };
}

export interface ServerOptions {
  catalog: KindCatalog;
  /** Streams to speak over (stdio by default). */
  input?: NodeJS.ReadableStream;
  output?: NodeJS.WritableStream;
}

export function startServer(options: ServerOptions): Connection {
  const connection = options.input && options.output ? createConnection(options.input, options.output) : createConnection(process.stdin, process.stdout);
  const documents = new TextDocuments(TextDocument);
  const { catalog } = options;
  /** URIs that got diagnostics from the last compile of each open document, to clear them when they are fixed. */
  const published = new Map<string, Set<string>>();

  const pathOf = (uri: string): string => (uri.startsWith('file:') ? fileURLToPath(uri) : uri);

  function validate(doc: TextDocument): void {
    const file = pathOf(doc.uri);
    const result = compile({ file, text: doc.getText(), catalog, projectDir: process.cwd() });
    const byUri = new Map<string, LspDiagnostic[]>([[doc.uri, []]]);
    for (const d of result.diagnostics) {
      // An error without a place in a file (e.g. an unreadable import named on no line) is shown at the top of this one.
      const span = d.span ?? { file, line: 1, column: 1, offset: 0, length: 1 };
      const uri = span.file === file ? doc.uri : pathToFileURL(span.file).href;
      if (!byUri.has(uri)) byUri.set(uri, []);
      byUri.get(uri)!.push(toLsp(d, span));
    }
    for (const stale of published.get(doc.uri) ?? []) if (!byUri.has(stale)) byUri.set(stale, []);
    for (const [uri, diagnostics] of byUri) void connection.sendDiagnostics({ uri, diagnostics });
    published.set(doc.uri, new Set([...byUri].filter(([, ds]) => ds.length > 0).map(([uri]) => uri)));
  }

  const astOf = (doc: TextDocument) => parse(new SourceFile(pathOf(doc.uri), doc.getText())).ast;

  connection.onInitialize(() => ({
    capabilities: {
      textDocumentSync: TextDocumentSyncKind.Incremental,
      hoverProvider: true,
      definitionProvider: true,
      completionProvider: { triggerCharacters: ['.', '=', ' '] },
    },
    serverInfo: { name: 'smke' },
  }));

  documents.onDidChangeContent((e) => validate(e.document));
  documents.onDidClose((e) => {
    for (const uri of published.get(e.document.uri) ?? []) void connection.sendDiagnostics({ uri, diagnostics: [] });
    published.delete(e.document.uri);
  });

  connection.onHover((p) => {
    const doc = documents.get(p.textDocument.uri);
    if (!doc) return null;
    const h = hoverAt(astOf(doc), doc.offsetAt(p.position), catalog);
    return h ? { contents: { kind: MarkupKind.Markdown, value: h.markdown }, range: range(h.span) } : null;
  });

  connection.onDefinition((p) => {
    const doc = documents.get(p.textDocument.uri);
    if (!doc) return null;
    const def = definitionAt(astOf(doc), doc.offsetAt(p.position));
    if (!def) return null;
    const uri = def.span.file === pathOf(doc.uri) ? doc.uri : pathToFileURL(def.span.file).href;
    const r = def.kind === 'file' ? { start: { line: 0, character: 0 }, end: { line: 0, character: 0 } } : range(def.span);
    return { uri, range: r };
  });

  connection.onCompletion((p) => {
    const doc = documents.get(p.textDocument.uri);
    if (!doc) return [];
    return completionsAt(doc.getText(), doc.offsetAt(p.position), pathOf(doc.uri), catalog).map((c) => ({
      label: c.label,
      kind: COMPLETION_KIND[c.kind],
      detail: c.detail,
    }));
  });

  documents.listen(connection);
  connection.listen();
  return connection;
}
