// Picks the fastest tfjs backend available on this machine. tfjs-node(-gpu)
// are optional dependencies whose native addon is usually missing, and Dawn
// (the `webgpu` package) only helps when an adapter exists, so every candidate
// is probed and a failure means "try the next one", never a crash.

import type * as TF from '@tensorflow/tfjs';

export type BackendName = 'tensorflow-gpu' | 'webgpu' | 'tensorflow' | 'wasm' | 'cpu';

/** Fastest first. `tensorflow-gpu` and `tensorflow` are tfjs-node-gpu and tfjs-node. */
export const BACKEND_ORDER: readonly BackendName[] = ['tensorflow-gpu', 'webgpu', 'tensorflow', 'wasm', 'cpu'];

const ALIASES: Record<string, BackendName> = {
  'tfjs-node-gpu': 'tensorflow-gpu',
  'node-gpu': 'tensorflow-gpu',
  'tensorflow-gpu': 'tensorflow-gpu',
  'tfjs-node': 'tensorflow',
  node: 'tensorflow',
  tensorflow: 'tensorflow',
  webgpu: 'webgpu',
  wasm: 'wasm',
  cpu: 'cpu',
};

export function normaliseBackendName(name: string): BackendName {
  const b = ALIASES[name.toLowerCase()];
  if (!b) throw new Error(`unknown tfjs backend '${name}' (known: ${Object.keys(ALIASES).join(', ')})`);
  return b;
}

let tfPromise: Promise<typeof TF> | undefined;

/** The tfjs module, loaded once, with the development banner and checks off. */
export function loadTf(): Promise<typeof TF> {
  tfPromise ??= import('@tensorflow/tfjs').then((tf) => {
    tf.env().set('PROD', true);
    return tf;
  });
  return tfPromise;
}

/**
 * Flags for Dawn's node binding. Dawn does not read CUDA_VISIBLE_DEVICES, and
 * the binding's only adapter selector is `adapter=<name substring>`: the
 * first adapter whose name contains it. SMKE_WEBGPU_ADAPTER passes one
 * through (machines with different GPU models); identical GPUs cannot be told
 * apart this way, see docs/paper-profile.md.
 */
export function dawnFlags(env: NodeJS.ProcessEnv = process.env): string[] {
  return env.SMKE_WEBGPU_ADAPTER ? [`adapter=${env.SMKE_WEBGPU_ADAPTER}`] : [];
}

async function registerCandidate(tf: typeof TF, name: BackendName): Promise<boolean> {
  switch (name) {
    case 'tensorflow-gpu':
      // The import registers the backend (name 'tensorflow') as a side effect.
      await import('@tensorflow/tfjs-node-gpu' as string);
      return tf.findBackendFactory('tensorflow') !== null && (await tf.setBackend('tensorflow'));
    case 'tensorflow':
      await import('@tensorflow/tfjs-node' as string);
      return tf.findBackendFactory('tensorflow') !== null && (await tf.setBackend('tensorflow'));
    case 'webgpu': {
      const g = globalThis as { navigator?: { gpu?: unknown } };
      if (!g.navigator?.gpu) {
        const dawn = (await import('webgpu' as string)) as { create(opts: string[]): unknown; globals: object };
        Object.assign(globalThis, dawn.globals);
        const gpu = dawn.create(dawnFlags());
        if (!g.navigator) Object.defineProperty(globalThis, 'navigator', { value: { gpu }, configurable: true, writable: true });
        else Object.defineProperty(g.navigator, 'gpu', { value: gpu, configurable: true });
      }
      const adapter = await (g.navigator!.gpu as { requestAdapter(): Promise<unknown> }).requestAdapter();
      if (!adapter) return false;
      // Only now: the webgpu backend reads navigator.gpu when it registers.
      await import('@tensorflow/tfjs-backend-webgpu');
      return await tf.setBackend('webgpu');
    }
    case 'wasm':
      await import('@tensorflow/tfjs-backend-wasm');
      {
        const kernels = await import('./wasm-kernels.js');
        kernels.useFastWasmKernels(true);
        kernels.registerMissingWasmKernels();
      }
      return await tf.setBackend('wasm');
    case 'cpu':
      return await tf.setBackend('cpu');
  }
}

export interface BackendChoice {
  tf: typeof TF;
  backend: BackendName;
  /** Why each faster candidate was skipped. */
  skipped: { backend: BackendName; reason: string }[];
}

/**
 * Sets the tfjs backend: the requested one (an error if it cannot load), or
 * the first of BACKEND_ORDER that loads. `log` receives the choice.
 */
export async function selectBackend(requested?: string, log?: (msg: string) => void): Promise<BackendChoice> {
  const tf = await loadTf();
  const candidates = requested ? [normaliseBackendName(requested)] : BACKEND_ORDER;
  const skipped: BackendChoice['skipped'] = [];
  for (const name of candidates) {
    let ok = false;
    let reason = 'not available';
    try {
      ok = await registerCandidate(tf, name);
    } catch (e) {
      reason = (e as Error).message.split('\n')[0]!.slice(0, 160);
    }
    if (ok) {
      log?.(`tfjs backend: ${name}${skipped.length ? ` (skipped ${skipped.map((s) => s.backend).join(', ')})` : ''}`);
      return { tf, backend: name, skipped };
    }
    skipped.push({ backend: name, reason });
  }
  throw new Error(`no tfjs backend could be loaded: ${skipped.map((s) => `${s.backend}: ${s.reason}`).join('; ')}`);
}
