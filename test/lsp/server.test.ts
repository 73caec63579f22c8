// Drives `smke lsp` as an editor would: a child process speaking LSP over
// stdio. Needs dist/ (npm test builds it first).
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createMessageConnection, StreamMessageReader, StreamMessageWriter, type MessageConnection } from 'vscode-jsonrpc/node.js';

const BIN = fileURLToPath(new URL('../../bin/smke.js', import.meta.url));

interface PublishedDiagnostics {
  uri: string;
  diagnostics: { code: string; message: string; severity: number; range: { start: { line: number; character: number } } }[];
}

let dir: string;
let child: ChildProcess;
let conn: MessageConnection;
const published: PublishedDiagnostics[] = [];
let notify: (() => void) | undefined;

/** Waits until a publishDiagnostics for `uri` satisfies `ok`. */
async function diagnosticsFor(uri: string, ok: (p: PublishedDiagnostics) => boolean): Promise<PublishedDiagnostics> {
  for (;;) {
    const hit = [...published].reverse().find((p) => p.uri === uri);
    if (hit && ok(hit)) return hit;
    await new Promise<void>((res) => {
      notify = res;
      setTimeout(res, 200);
    });
  }
}

let version = 1;
function open(path: string, text: string): string {
  const uri = pathToFileURL(path).href;
  void conn.sendNotification('textDocument/didOpen', { textDocument: { uri, languageId: 'smke', version: version++, text } });
  return uri;
}
function change(uri: string, text: string): void {
  void conn.sendNotification('textDocument/didChange', { textDocument: { uri, version: version++ }, contentChanges: [{ text }] });
}
/** LSP position of the first occurrence of `needle` (plus `delta` characters) in `text`. */
function at(text: string, needle: string, delta = 0): { line: number; character: number } {
  const offset = text.indexOf(needle);
  if (offset < 0) throw new Error(`'${needle}' not in the text`);
  const before = text.slice(0, offset + delta);
  const line = before.split('\n').length - 1;
  return { line, character: before.length - before.lastIndexOf('\n') - 1 };
}

const PIPELINE = `smke 1
import "lib/common.smke"

param steps = 40

stage prep = exec {
  argv = ["sh", "-c", "echo \${steps} > {out}/n.txt"]
  outputs = { table = "n.txt" }
}

stage train = exec {
  argv = ["cat", prep.table, corpus.files]
  retries = 1
}
`;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'smke-lsp-'));
  mkdirSync(join(dir, 'lib'));
  writeFileSync(
    join(dir, 'lib', 'common.smke'),
    'smke 1\n\nstage corpus = exec {\n  argv = ["sh", "-c", "ls > {out}/files.txt"]\n  outputs = { files = "files.txt" }\n}\n',
  );
  child = spawn(process.execPath, [BIN, 'lsp', '--stdio'], { cwd: dir, stdio: ['pipe', 'pipe', 'inherit'] });
  conn = createMessageConnection(new StreamMessageReader(child.stdout!), new StreamMessageWriter(child.stdin!));
  conn.onNotification('textDocument/publishDiagnostics', (p: PublishedDiagnostics) => {
    published.push(p);
    notify?.();
  });
  conn.listen();
  const init = await conn.sendRequest<{ capabilities: Record<string, unknown> }>('initialize', {
    processId: process.pid,
    rootUri: pathToFileURL(dir).href,
    capabilities: {},
  });
  expect(init.capabilities.hoverProvider).toBe(true);
  await conn.sendNotification('initialized', {});
}, 30_000);

afterAll(async () => {
  await conn?.sendRequest('shutdown').catch(() => undefined);
  await conn?.sendNotification('exit').catch(() => undefined);
  const exited = new Promise((res) => child.once('exit', res));
  setTimeout(() => child.kill('SIGKILL'), 5000).unref();
  await exited;
  conn?.dispose();
  rmSync(dir, { recursive: true, force: true });
});

describe('smke lsp over stdio', () => {
  it('publishes the compiler diagnostics as you type, with their codes and places, and clears them when fixed', async () => {
    const path = join(dir, 'typing.smke');
    const broken = 'smke 1\n\nstage a = exec {\n  argv = ["true"]\n  argvv = 3\n}\n';
    const uri = open(path, broken);
    const d = await diagnosticsFor(uri, (p) => p.diagnostics.length > 0);
    const unknown = d.diagnostics.find((x) => /argvv/.test(x.message));
    expect(unknown, JSON.stringify(d.diagnostics)).toBeDefined();
    expect(unknown!.code).toMatch(/^E\d{4}$/);
    expect(unknown!.range.start).toEqual(at(broken, 'argvv'));
    expect(unknown!.message).toMatch(/did you mean|argv/i);

    // An unknown kind and a syntax error: each a diagnostic of its own line.
    const worse = 'smke 1\n\nstage a = exce {\n  argv = ["true"]\n}\nstage b = exec { argv = [ }\n';
    change(uri, worse);
    const d2 = await diagnosticsFor(uri, (p) => p.diagnostics.some((x) => /exce/.test(x.message)));
    expect(d2.diagnostics.find((x) => /exce/.test(x.message))!.range.start.line).toBe(2);

    change(uri, 'smke 1\n\nstage a = exec {\n  argv = ["true"]\n}\n');
    await diagnosticsFor(uri, (p) => p.diagnostics.length === 0);
  });

  it('hovers: a kind shows its reference, a param its schema, an output its description', async () => {
    const uri = open(join(dir, 'hover.smke'), PIPELINE);
    const hover = (pos: { line: number; character: number }) =>
      conn.sendRequest<{ contents: { value: string } } | null>('textDocument/hover', { textDocument: { uri }, position: pos });
    const kind = await hover(at(PIPELINE, 'exec {', 1));
    expect(kind!.contents.value).toMatch(/## `exec`/);
    expect(kind!.contents.value).toMatch(/\| `argv` \|/);
    const param = await hover(at(PIPELINE, 'outputs =', 2));
    expect(param!.contents.value).toMatch(/\*\*outputs\*\*.*parameter of `exec`/);
    const output = await hover(at(PIPELINE, 'prep.table', 6));
    expect(output!.contents.value).toMatch(/prep\.table.*file.*n\.txt/);
    const setting = await hover(at(PIPELINE, 'retries', 1));
    expect(setting!.contents.value).toMatch(/stage setting/);
    expect(await hover({ line: 0, character: 0 })).toBeNull();
  });

  it('goes to the definition of a param, a stage (in this file and an imported one) and an import', async () => {
    const uri = open(join(dir, 'def.smke'), PIPELINE);
    const def = (pos: { line: number; character: number }) =>
      conn.sendRequest<{ uri: string; range: { start: { line: number; character: number } } } | null>('textDocument/definition', {
        textDocument: { uri },
        position: pos,
      });
    const param = await def(at(PIPELINE, '${steps}', 3));
    expect(param).toMatchObject({ uri, range: { start: at(PIPELINE, 'steps = 40') } });
    const stage = await def(at(PIPELINE, 'prep.table', 1));
    expect(stage).toMatchObject({ uri, range: { start: at(PIPELINE, 'prep = exec') } });
    const imported = await def(at(PIPELINE, 'corpus.files', 2));
    expect(imported!.uri).toBe(pathToFileURL(join(dir, 'lib', 'common.smke')).href);
    expect(imported!.range.start).toEqual({ line: 2, character: 6 });
    const file = await def(at(PIPELINE, 'lib/common', 2));
    expect(file!.uri).toBe(pathToFileURL(join(dir, 'lib', 'common.smke')).href);
  });

  it('completes kinds after `=`, params inside a body, and outputs after `stage.`', async () => {
    const complete = async (text: string, needle: string, delta: number) => {
      const uri = open(join(dir, `c${version}.smke`), text);
      const items = await conn.sendRequest<{ label: string }[]>('textDocument/completion', { textDocument: { uri }, position: at(text, needle, delta) });
      return items.map((i) => i.label);
    };
    const kinds = await complete('smke 1\nstage a = ex\n', '= ex', 4);
    expect(kinds).toContain('exec');
    expect(kinds).toContain('download');

    const params = await complete('smke 1\nstage a = exec {\n  argv = ["true"]\n  \n}\n', '  \n}', 2);
    expect(params).toContain('outputs');
    expect(params).toContain('retries');
    expect(params).not.toContain('argv'); // already given

    const outputs = await complete(`${PIPELINE}stage z = exec { argv = ["cat", prep.] }\n`, 'prep.]', 5);
    expect(outputs).toEqual(expect.arrayContaining(['table', 'out']));
  });
});
